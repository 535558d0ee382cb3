"""The lines a batch replay rejected, said so that a user can fix the file.

``RejectLog`` receives every invalid line of a replay or what-if (interactions and spend),
keeps the first few for the terminal report and, given a file, writes each as one JSON object
(a line of the ``--rejects`` file)::

    {"input": "interactions" | "spend", "file": "in.jsonl", "line": 12,
     "error": "data.email: expected ..., got ...",
     "problems": [{"path": "data.email", "expected": "...", "got": "..."}],
     "original": "<the line as text>"}

``line`` is the line's number in its file (1-based, blank lines counted), or its position in
the input when it did not come from a file. A line that is not UTF-8 comes as
``original_base64`` instead of ``original``; a line longer than ``ORIGINAL_LIMIT`` bytes comes as
``original_bytes`` (its length), ``original_sha256`` and ``original_prefix`` (its first
``PREFIX_BYTES`` bytes as text), so the file stays small however large the bad lines are.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from contracts import ContractError

ORIGINAL_LIMIT = 4096
"""Longest line (bytes) written whole to the rejects file."""

PREFIX_BYTES = 256
"""How much of a longer line is written, as text."""

REASONS_SHOWN = 5
"""How many rejected lines the terminal report names."""


@dataclass(frozen=True, slots=True)
class RejectedLine:
    """Where a rejected line was and why: enough to find and fix it."""

    input: str
    file: str
    line: int
    error: str

    def reason(self) -> str:
        """``FILE:LINE: error`` (``spend FILE:LINE`` for a spend line)."""
        where = f"{self.file}:{self.line}"
        return f"{'spend ' if self.input == 'spend' else ''}{where}: {self.error}"


def reject_record(
    input_name: str, file: str, line: int, raw: bytes, error: ContractError
) -> dict[str, Any]:
    """The JSON object the rejects file holds for one line (see the module docstring)."""
    record: dict[str, Any] = {
        "input": input_name,
        "file": file,
        "line": line,
        "error": str(error),
        "problems": [
            {"path": p.path, "expected": p.expected, "got": p.got} for p in error.problems
        ],
    }
    if len(raw) > ORIGINAL_LIMIT:
        record["original_bytes"] = len(raw)
        record["original_sha256"] = hashlib.sha256(raw).hexdigest()
        record["original_prefix"] = raw[:PREFIX_BYTES].decode("utf-8", errors="replace")
        return record
    try:
        record["original"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        import base64  # noqa: PLC0415 - rare

        record["original_base64"] = base64.b64encode(raw).decode("ascii")
    return record


@dataclass
class RejectLog:
    """Every rejected line of one run: the first ``REASONS_SHOWN`` kept, each written to
    ``out`` (a binary file) when there is one."""

    out: IO[bytes] | None = None
    first: list[RejectedLine] = field(default_factory=list)
    count: int = 0

    def add(self, input_name: str, file: str, line: int, raw: bytes, error: ContractError) -> None:
        """Record one rejected line."""
        self.count += 1
        if len(self.first) < REASONS_SHOWN:
            self.first.append(RejectedLine(input_name, file, line, str(error)))
        if self.out is not None:
            record = reject_record(input_name, file, line, raw, error)
            self.out.write(orjson.dumps(record) + b"\n")


def open_rejects(path: Path) -> IO[bytes]:
    """``path`` opened to write the rejects file: replaced if it is a file, never followed if
    it is a symbolic link, and readable by its owner only, since rejected lines may hold
    personal data (an e-mail address in a malformed form)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise
