"""JSON Schema (draft 2020-12) for every contract type, for producers in other languages.

One schema per interaction type at its current version, one per lifecycle event type, one
for the spend record and one for the SLA alert. Each is exactly what the decoder accepts, apart
from limits that JSON Schema cannot state (the message size) and the calendar check of a
timestamp (2024-02-30), which only a validator that checks ``format: date-time`` makes.
``export_schemas`` writes them as files.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from contracts.alerts import ALERT_VERSION, SlaAlert
from contracts.codec import adapter
from contracts.interactions import CURRENT_VERSIONS, DATA_TYPES, InteractionFields
from contracts.lifecycle_events import (
    LIFECYCLE_DATA_TYPES,
    LIFECYCLE_VERSIONS,
    LifecycleEventFields,
)
from contracts.spend import SPEND_VERSION, Spend
from contracts.vocabulary import InteractionType

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _envelope(fields: type[Any], data: type[Any], kind: str, version: int) -> dict[str, Any]:
    schema = adapter(fields).json_schema()
    payload = adapter(data).json_schema()
    defs = {**schema.pop("$defs", {}), **payload.pop("$defs", {})}
    schema["properties"]["type"] = {"const": kind}
    schema["properties"]["version"] = {"const": version}
    schema["properties"]["data"] = payload
    if defs:
        schema["$defs"] = defs
    return schema


def interaction_schema(kind: str) -> dict[str, Any]:
    """The schema of one interaction type's current version."""
    t = InteractionType(kind)
    schema = _envelope(InteractionFields, DATA_TYPES[t], t.value, CURRENT_VERSIONS[t])
    schema["anyOf"] = [
        {"required": ["lead_id"], "properties": {"lead_id": {"type": "string"}}},
        {"required": ["anonymous_id"], "properties": {"anonymous_id": {"type": "string"}}},
    ]
    return {**schema, "$schema": DIALECT, "title": f"interaction.{t.value}.v{CURRENT_VERSIONS[t]}"}


def all_schemas() -> dict[str, dict[str, Any]]:
    """Every schema, by file name (``interaction.form_submitted.v2.json``, ...)."""
    schemas: dict[str, dict[str, Any]] = {}
    for t in CURRENT_VERSIONS:
        schemas[f"interaction.{t.value}.v{CURRENT_VERSIONS[t]}.json"] = interaction_schema(t)
    for lt, cls in LIFECYCLE_DATA_TYPES.items():
        v = LIFECYCLE_VERSIONS[lt]
        name = f"lifecycle_event.{lt.value}.v{v}"
        schemas[f"{name}.json"] = {
            **_envelope(LifecycleEventFields, cls, lt.value, v),
            "$schema": DIALECT,
            "title": name,
        }
    spend = adapter(Spend).json_schema()
    spend["properties"]["version"] = {"const": SPEND_VERSION}
    schemas[f"spend.v{SPEND_VERSION}.json"] = {
        **spend,
        "$schema": DIALECT,
        "title": f"spend.v{SPEND_VERSION}",
    }
    alert = adapter(SlaAlert).json_schema()
    alert["properties"]["version"] = {"const": ALERT_VERSION}
    schemas[f"alert.v{ALERT_VERSION}.json"] = {
        **alert,
        "$schema": DIALECT,
        "title": f"alert.v{ALERT_VERSION}",
    }
    return schemas


def export_schemas(
    directory: Path, schemas: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Path]:
    """Write one pretty, key-sorted JSON file per schema into ``directory``; return their paths.

    ``schemas`` defaults to ``all_schemas()``. The directory is created if missing. Nothing is
    written unless every file lands inside the directory once paths are resolved (a name with
    ``..`` or a separator, or an existing symlink pointing elsewhere, raises ``ValueError``).
    Existing files of the same names are replaced by new files (renamed into place), so a hard
    link under such a name does not carry the write to its other names.
    """
    chosen = all_schemas() if schemas is None else schemas
    root = Path(directory).resolve()
    root.mkdir(parents=True, exist_ok=True)
    targets: list[tuple[Path, bytes]] = []
    for name, schema in chosen.items():
        target = (root / name).resolve()
        if target.parent != root:
            raise ValueError(f"schema file {name!r} would be written outside {root}")
        text = orjson.dumps(
            schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
        )
        targets.append((target, text))
    for target, text in targets:
        # A new file renamed over the name: a hard link planted under that name (the same file
        # as one outside the directory) is replaced, never written through.
        fd, temporary = tempfile.mkstemp(dir=root, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(text)
            os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide public schemas
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    return [target for target, _ in targets]
