"""The documentation site's one hook: the README is its home page, with the links it has on GitHub.

`mkdocs.yml` names this file under `hooks:`. The README lives at the repository's root, outside
`docs_dir`, and links to `docs/contracts.md` as GitHub needs; the pages in `docs/` link back to
`../README.md`. On the site the README is served as `index.md`, beside the other pages, so each
relative link is read where the file sits in the repository and rewritten to where that file
sits on the site. One source of truth: no copy of the README, no symbolic link (a checkout without
symlinks would serve the link's text as the home page). A link to a file that is not on the site
is left alone, so the strict build reports it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

README = "README.md"
HOME = "index.md"

# An inline link's or image's target, `](target` or `](<target`, and a reference definition's,
# `[name]: target`; the target stops before its anchor, query or title.
_LINK_TARGET = re.compile(
    r"(?P<lead>\]\(\s*<?|^[ ]{0,3}\[[^\]\n]+\]:[ \t]*<?)(?P<target>[^\s)>#?]+)",
    re.MULTILINE,
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def repo_path(page: str, docs_dir: str) -> str:
    """Where the page served at `page` is kept in the repository (relative to the root)."""
    return README if page == HOME else posixpath.join(docs_dir, page)


def site_path(path: str, docs_dir: str) -> str | None:
    """Where the repository's file at `path` is served on the site, or None when it is not."""
    if path == README:
        return HOME
    prefix = docs_dir.rstrip("/") + "/"
    return path.removeprefix(prefix) if path.startswith(prefix) else None


def site_target(target: str, page: str, docs_dir: str) -> str:
    """A link target written in the page served at `page`, as the site needs it.

    Absolute links, links with a scheme and links to files the site does not serve come back
    unchanged (mkdocs' validation judges them).
    """
    if not target or target.startswith("/") or _SCHEME.match(target):
        return target
    kept_in = posixpath.dirname(repo_path(page, docs_dir))
    served = site_path(posixpath.normpath(posixpath.join(kept_in, target)), docs_dir)
    if served is None:
        return target
    return posixpath.relpath(served, posixpath.dirname(page) or ".")


def rewrite_links(markdown: str, page: str, docs_dir: str) -> str:
    """Every relative link of a page's Markdown, rewritten by `site_target`."""
    return _LINK_TARGET.sub(
        lambda match: match["lead"] + site_target(match["target"], page, docs_dir), markdown
    )


def _docs_dir(config: MkDocsConfig) -> str:
    root = Path(config.config_file_path).parent
    return Path(config.docs_dir).relative_to(root).as_posix()


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    """Serve the root's README.md as the home page."""
    if files.get_file_from_path(HOME) is not None:
        raise PluginError(
            f"{config.docs_dir}/{HOME} would hide the README: the site's home page is {README}"
        )
    readme = Path(config.config_file_path).parent / README
    files.append(File.generated(config, HOME, abs_src_path=str(readme)))
    return files


def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Rewrite the page's relative links from where its files are kept to where they are served."""
    return rewrite_links(markdown, page.file.src_uri, _docs_dir(config))
