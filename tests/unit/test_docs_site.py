"""The documentation site's hook (mkdocs_hooks.py): each relative link, read where its page is kept
in the repository, points where the target is served on the site (the README is `index.md`).
`make docs` builds the real site strictly; these rows pin the rewriting itself."""

from __future__ import annotations

import pytest

from mkdocs_hooks import rewrite_links, site_target


@pytest.mark.parametrize(
    ("page", "target", "expected"),
    [
        # The README (served as index.md) links into docs/ as GitHub needs.
        ("index.md", "docs/contracts.md", "contracts.md"),
        ("index.md", "./docs/operations.md", "operations.md"),
        # A docs page links back to the README.
        ("architecture.md", "../README.md", "index.md"),
        # Links between docs pages stay as written.
        ("operations.md", "benchmarks.md", "benchmarks.md"),
        ("operations.md", "./security.md", "security.md"),
        # A page in a folder of docs/ reaches the README and its neighbours.
        ("guides/replay.md", "../../README.md", "../index.md"),
        ("guides/replay.md", "../audit.md", "../audit.md"),
        # Files the site does not serve are left for the strict build to report.
        ("index.md", "pyproject.toml", "pyproject.toml"),
        ("index.md", "docs/nope.md", "nope.md"),
        ("architecture.md", "../Makefile", "../Makefile"),
        # Absolute links and links with a scheme are not ours to change.
        ("index.md", "https://example.org/docs/x.md", "https://example.org/docs/x.md"),
        ("index.md", "mailto:ops@example.org", "mailto:ops@example.org"),
        ("index.md", "/docs/x.md", "/docs/x.md"),
    ],
)
def test_a_link_points_where_its_target_is_served(page: str, target: str, expected: str) -> None:
    assert site_target(target, page, "docs") == expected


def test_anchors_titles_and_reference_definitions_survive_the_rewrite() -> None:
    readme = (
        "See [Dashboard](docs/operations.md#dashboard) and [the rules](<docs/policy.md>),\n"
        '![chart](docs/img/chart.png "a chart"), [top](#two-commands), [ext](https://x.org/docs/a.md).\n'
        "\n"
        "[audit]: docs/audit.md#audit\n"
    )
    assert rewrite_links(readme, "index.md", "docs") == (
        "See [Dashboard](operations.md#dashboard) and [the rules](<policy.md>),\n"
        '![chart](img/chart.png "a chart"), [top](#two-commands), [ext](https://x.org/docs/a.md).\n'
        "\n"
        "[audit]: audit.md#audit\n"
    )


def test_a_docs_page_link_to_the_readme_section_points_at_the_home_page() -> None:
    page = "The picture is in the [README](../README.md#how-it-fits-together).\n"
    assert rewrite_links(page, "architecture.md", "docs") == (
        "The picture is in the [README](index.md#how-it-fits-together).\n"
    )
