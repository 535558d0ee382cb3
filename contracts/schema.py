"""JSON Schema (draft 2020-12) for every contract type, for producers in other languages.

One schema per interaction type at its current version, one per lifecycle event type, and one
for the spend record. Each is exactly what the decoder accepts, apart from limits that JSON
Schema cannot state (the message size).
"""

from __future__ import annotations

from typing import Any

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
    return schemas
