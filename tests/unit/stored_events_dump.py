"""Dump what the lifecycle stores for a fixed simulated stream, as JSON lines, so that two
checkouts can be compared event by event (``tests/unit/test_lifecycle_stored_events.py``).

Run as a script with ``PYTHONPATH`` set to the checkout to dump (it imports only what every
version of the lifecycle offers: ``LeadLifecycle(policy, env)``, ``process``, ``forget``)::

    PYTHONPATH=/path/to/checkout python tests/unit/stored_events_dump.py OUT.jsonl[.gz]

The stream is the simulator's with noise (bad lines, which do not decode, are left out;
duplicates and conflicting copies go through ``process``), in batches with tracking records,
then one lead is forgotten. The clock and the randomness are made deterministic (the recorded
time of the n-th event created, the data keys, nonces and key ids), so that the stored bytes,
hash chains and sealed values included, are the same for the same code. Snapshots are taken
every ``SNAPSHOT_INTERVAL`` events, so they are compared too. Each line is one row:

- ``{"kind": "event", "id", "topic", "originator_id", "originator_version", "state"}`` in
  notification order (``state`` is the stored JSON, as text);
- ``{"kind": "snapshot", ...}`` the same for every snapshot of every stream;
- ``{"kind": "lead", "originator_id", "state"}``: every stream's aggregate as the checkout reads
  it back from the store at the end, encoded as a snapshot would encode it.
"""

from __future__ import annotations

import gzip
import os
import random
import secrets
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

INTERACTIONS = 300
"""Valid (decodable) interactions processed, noise included."""
BATCH = 40
SNAPSHOT_INTERVAL = 5
SIM_LEADS = 40
SIM_SEED = 11
NOISE = 0.1
CLOCK_START = datetime(2031, 1, 1, tzinfo=UTC)
MASTER_KEY = "B" * 43 + "="  # base64 of 32 bytes


def _deterministic() -> None:
    """A clock that ticks one millisecond per reading, and seeded randomness."""
    from eventsourcing import domain  # noqa: PLC0415

    ticks = iter(range(10**9))

    def now() -> datetime:
        return CLOCK_START + timedelta(milliseconds=next(ticks))

    domain.datetime_now_with_tzinfo = now  # read by CanCreateTimestamp.create_timestamp
    rng = random.Random(20310101)
    os.urandom = rng.randbytes

    def token_hex(nbytes: int | None = None) -> str:
        # secrets.token_hex's own default: 32 bytes when none are asked for.
        return rng.randbytes(32 if nbytes is None else nbytes).hex()

    secrets.token_hex = token_hex
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

    AESGCM.generate_key = classmethod(  # type: ignore[method-assign,assignment]
        lambda cls, bit_length: rng.randbytes(bit_length // 8)
    )


def dump() -> list[dict[str, Any]]:
    """The rows described in the module docstring, for the current ``PYTHONPATH``."""
    _deterministic()
    from eventsourcing.persistence import Tracking  # noqa: PLC0415

    from contracts import ContractError, decode_interaction  # noqa: PLC0415
    from leadflow.simulator import SimulationConfig, simulate  # noqa: PLC0415
    from lifecycle.application import LeadLifecycle  # noqa: PLC0415
    from lifecycle.lead import Lead  # noqa: PLC0415
    from lifecycle.policy import load_policy  # noqa: PLC0415

    interactions: list[Any] = []
    config = SimulationConfig(leads=SIM_LEADS, seed=SIM_SEED, noise=NOISE)
    for line in simulate(config).lines():
        try:
            interactions.append(decode_interaction(line))
        except ContractError:
            continue
        if len(interactions) == INTERACTIONS:
            break
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="stored-events-") as tmp:
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(Path(tmp) / "events.sqlite"),
            "PERSONAL_DATA_MASTER_KEY": MASTER_KEY,
        }
        app = LeadLifecycle(load_policy("b2b_saas"), env=env)
        app.snapshotting_intervals = {Lead: SNAPSHOT_INTERVAL}  # type: ignore[misc]
        for offset in range(0, len(interactions), BATCH):
            chunk = interactions[offset : offset + BATCH]
            app.process(chunk, Tracking("dump:0", offset + len(chunk) - 1))
        forgotten = next(i.lead_id for i in interactions if i.lead_id is not None)
        app.forget(forgotten, at=datetime(2031, 6, 1, tzinfo=UTC), reference="dump")
        notifications = app.recorder.select_notifications(start=1, limit=10**6)
        streams: dict[Any, None] = {}
        for n in notifications:
            streams.setdefault(n.originator_id, None)
            rows.append(_row("event", n, id=n.id))
        assert app.snapshots is not None
        for stream_id in streams:
            for s in app.snapshots.recorder.select_events(stream_id):
                rows.append(_row("snapshot", s))
        fresh = LeadLifecycle(load_policy("b2b_saas"), env=env)
        for stream_id in streams:
            lead: Lead = fresh.repository.get(stream_id)
            state = fresh.mapper.to_stored_event(Lead.Snapshot.take(lead)).state
            rows.append({"kind": "lead", "originator_id": str(stream_id), "state": _text(state)})
        fresh.close()
        app.close()
    return rows


def _text(state: bytes) -> str:
    return state.decode()


def _row(kind: str, stored: Any, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        **extra,
        "topic": stored.topic,
        "originator_id": str(stored.originator_id),
        "originator_version": stored.originator_version,
        "state": _text(stored.state),
    }


def write(rows: list[dict[str, Any]], path: str) -> None:
    """Write ``rows`` as JSON lines (gzip-compressed, reproducibly, when ``path`` ends .gz)."""
    data = b"".join(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) + b"\n" for r in rows)
    if path.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    Path(path).write_bytes(data)


def read(path: str | Path) -> list[dict[str, Any]]:
    """The rows ``write`` wrote."""
    data = Path(path).read_bytes()
    if str(path).endswith(".gz"):
        data = gzip.decompress(data)
    return [orjson.loads(line) for line in data.splitlines()]


if __name__ == "__main__":
    write(dump(), sys.argv[1])
