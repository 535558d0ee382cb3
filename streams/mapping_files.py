"""Reading the TOML mappings of the doors that turn other systems' records into interactions
(the Segment-spec routes, ``leadflow import``): one error type naming the file and the key
path, and one reader of tables, texts, lists and choices that words every problem alike."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any

from contracts.errors import shown

__all__ = ["MappingFileError", "MappingReader", "read_text_file", "read_toml"]


class MappingFileError(ValueError):
    """A mapping is not valid: where (its source and the TOML key path) and what is wrong."""

    what = "mapping"
    """How the message names the file's kind."""

    def __init__(self, source: str, path: str, problem: str) -> None:
        self.source = source
        self.path = path
        self.problem = problem
        where = f"{source}: {path}" if path else source
        super().__init__(f"{self.what} {where}: {problem}")


def read_toml(text: str, source: str, error: type[MappingFileError]) -> dict[str, Any]:
    """The TOML document ``text`` (from ``source``), or ``error`` saying it is not TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(source, "", f"not valid TOML ({exc})") from None


def read_text_file(path: Path, error: type[MappingFileError]) -> str:
    """The UTF-8 text of the mapping file ``path``, or ``error`` saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(str(path), "", f"cannot be read ({exc})") from None


class MappingReader:
    """Reads the values of one mapping document, naming every problem by its key path as
    ``error`` (a ``MappingFileError``) of ``source``."""

    def __init__(self, source: str, error: type[MappingFileError]) -> None:
        self.source = source
        self.error = error

    def fail(self, path: str, problem: str) -> MappingFileError:
        """The error for ``problem`` at key ``path``."""
        return self.error(self.source, path, problem)

    def table(self, value: Any, path: str, keys: Iterable[str] | None = None) -> dict[str, Any]:
        """``value`` as a table, with no key but ``keys`` when they are given."""
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a table, got {shown(value)}")
        if keys is not None:
            allowed = set(keys)
            for key in value:
                if key not in allowed:
                    known = ", ".join(sorted(allowed))
                    raise self.fail(f"{path}.{key}" if path else key, f"no such key ({known})")
        return value

    def text(self, value: Any, path: str) -> str:
        """``value`` as a non-empty string."""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"expected a non-empty string, got {shown(value)}")
        return value

    def strings(self, value: Any, path: str) -> tuple[str, ...]:
        """``value`` as a list of non-empty strings, stripped and in lower case."""
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(path, f"expected a list of non-empty strings, got {shown(value)}")
        return tuple(v.strip().lower() for v in value)

    def choice(self, kind: type[StrEnum], value: Any, path: str) -> Any:
        """``value`` as a member of ``kind``."""
        try:
            return kind(value)
        except ValueError:
            names = ", ".join(m.value for m in kind)
            raise self.fail(path, f"expected one of {names}, got {shown(value)}") from None
