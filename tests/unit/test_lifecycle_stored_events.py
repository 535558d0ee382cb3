"""What the lifecycle stores does not change with how it is computed.

Two references, written by ``stored_events_dump.py`` for the simulator's stream (with noise)
under a deterministic clock and randomness, so hash chains and sealed values are compared too:

- ``data/stored_events_558ffb9.jsonl.gz``: what main at 558ffb9 stored, in eventsourcing's
  format, before ``lifecycle.encoding``. This checkout stores the same events (every attribute,
  read back through the mapper, the same but the chain values, which the new scheme computes
  over the stored bytes), the same snapshots and leads but for their chain heads; and a store
  main wrote is read by this checkout (from snapshots and from events alone), its chains
  verify, and processing goes on from it with every chain still verifying.
- ``data/stored_events_encoding2.jsonl.gz``: what this format stores, byte for byte (the
  format is a public promise: it changes only on purpose, with a new reference).
- ``data/stored_events_encoding1.jsonl.gz``: what the format stored before interactions named an
  account (``interaction_recorded`` without ``account_id`` and ``job_title``). A store written
  then is read by this checkout too: its chains verify, its leads load the same from snapshots
  and from events, and processing goes on from it (the same tests as for 558ffb9's store).

To regenerate a reference from a checkout (only when the stored format is meant to change)::

    git -C /work/main archive <commit> | tar -x -C /tmp/base
    PYTHONPATH=/tmp/base python tests/unit/stored_events_dump.py \
        tests/unit/data/stored_events_<name>.jsonl.gz

(The base tree's own dump matched the committed reference byte for byte when it was written;
that comparison needs the old tree, so it is a step of regenerating, not a test.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from contracts import CURRENT_VERSIONS, InteractionType
from contracts.interactions import UPCASTERS, data_unchanged
from lifecycle.application import LeadLifecycle
from lifecycle.audit import verify_store
from lifecycle.encoding import STATE, is_encoded
from lifecycle.lead import Lead
from lifecycle.policy import load_policy
from tests.unit import stored_events_dump

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
REFERENCE = HERE / "data" / "stored_events_558ffb9.jsonl.gz"
ENCODED = HERE / "data" / "stored_events_encoding2.jsonl.gz"
STORES_WRITTEN_BEFORE = {
    "558ffb9": REFERENCE,
    "encoding1": HERE / "data" / "stored_events_encoding1.jsonl.gz",
}
"""References of stores that earlier checkouts wrote, which this one must read and go on from."""
DUMP = HERE / "stored_events_dump.py"


def _dump(checkout: Path, out: Path) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    subprocess.run([sys.executable, str(DUMP), str(out)], env=env, check=True, cwd=checkout)
    return stored_events_dump.read(out)


def _assert_same_rows(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    for index, (got, want) in enumerate(zip(actual, expected, strict=False)):
        if got != want:
            fields = sorted(k for k in want.keys() | got.keys() if got.get(k) != want.get(k))
            where = f"row {index} ({want['kind']} {want.get('topic')} {want['originator_id']}"
            where += f" v{want.get('originator_version')})"
            detail = ""
            if "state" in fields:
                import orjson  # noqa: PLC0415

                g, w = orjson.loads(got["state"]), orjson.loads(want["state"])
                detail = "; state differs in " + ", ".join(
                    sorted(k for k in w.keys() | g.keys() if g.get(k) != w.get(k)) or ["key order"]
                )
            pytest.fail(f"{where} differs in {', '.join(fields)}{detail}")
    assert len(actual) == len(expected), "a different number of rows"


@pytest.fixture(scope="module")
def reference() -> list[dict[str, Any]]:
    return stored_events_dump.read(REFERENCE)


def test_the_reference_covers_every_event_class(reference: list[dict[str, Any]]) -> None:
    topics = {r["topic"] for r in reference if r["kind"] == "event"}
    names = {t.rsplit(".", 1)[-1] for t in topics}
    assert names == {
        "Registered",
        "InteractionRecorded",
        "ScoreChanged",
        "StageChanged",
        "TransitionRefused",
        "IdentityLinked",
        "PersonalDataErased",
    }
    assert any(r["kind"] == "snapshot" for r in reference)


@pytest.fixture(scope="module")
def now() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="stored-now-") as tmp:
        return _dump(ROOT, Path(tmp) / "now.jsonl")


def test_this_checkout_stores_the_bytes_of_its_format(now: list[dict[str, Any]]) -> None:
    _assert_same_rows(now, stored_events_dump.read(ENCODED))


_CHAINS = ("chain", "previous_chain")


def _attributes(mapper: Any, row: dict[str, Any]) -> dict[str, Any]:
    stored = StoredEvent(
        UUID(row["originator_id"]), row["originator_version"], row["topic"], row["state"].encode()
    )
    attributes = {k: v for k, v in vars(mapper.to_domain_event(stored)).items() if k not in _CHAINS}
    kept = attributes.get("interaction")
    if isinstance(kept, dict):
        # The kept interaction is at its type's current version: the versions that brought
        # the envelope's account_id left the data as it was, so only the number differs; and
        # the simulator names accounts since, which main's stream did not.
        kind = InteractionType(kept["type"])
        if all(
            UPCASTERS[(kind, step)] is data_unchanged
            for step in range(kept["version"], CURRENT_VERSIONS[kind])
        ):
            kept = {k: v for k, v in kept.items() if k != "account_id"}
            attributes["interaction"] = {**kept, "version": CURRENT_VERSIONS[kind]}
    return attributes


def _without_head(state: str) -> dict[str, Any]:
    import orjson  # noqa: PLC0415

    decoded: dict[str, Any] = orjson.loads(state)
    decoded.get("state", decoded).pop("_chain_head", None)
    return decoded


def test_this_checkout_stores_the_events_main_stored(
    reference: list[dict[str, Any]], now: list[dict[str, Any]]
) -> None:
    """Event by event, the attributes main stored (the chain values aside); snapshot by
    snapshot and lead by lead, the same state but for the chain head."""
    mapper = LeadLifecycle(load_policy("b2b_saas")).mapper
    assert len(now) == len(reference)
    for index, (got, want) in enumerate(zip(now, reference, strict=True)):
        where = (
            f"row {index} ({want['kind']} {want.get('topic')} v{want.get('originator_version')})"
        )
        assert {k: v for k, v in got.items() if k != "state"} == {
            k: v for k, v in want.items() if k != "state"
        }, where
        if want["kind"] == "event":
            assert not is_encoded(want["state"].encode())
            assert is_encoded(got["state"].encode()), where
            assert _attributes(mapper, got) == _attributes(mapper, want), where
        else:
            assert _without_head(got["state"]) == _without_head(want["state"]), where


@pytest.fixture(params=sorted(STORES_WRITTEN_BEFORE))
def written_before(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """The rows of a store an earlier checkout wrote (each reference in turn)."""
    return stored_events_dump.read(STORES_WRITTEN_BEFORE[request.param])


@pytest.fixture
def base_store(written_before: list[dict[str, Any]]) -> Iterator[dict[str, str]]:
    """A SQLite store holding the reference's events and snapshots, as main wrote them."""
    with tempfile.TemporaryDirectory(prefix="base-store-") as tmp:
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(Path(tmp) / "events.sqlite"),
            "PERSONAL_DATA_MASTER_KEY": stored_events_dump.MASTER_KEY,
        }
        app = LeadLifecycle(load_policy("b2b_saas"), env=env)
        rows = {"event": [], "snapshot": []}  # type: dict[str, list[StoredEvent]]
        for r in written_before:
            if r["kind"] in rows:
                rows[r["kind"]].append(
                    StoredEvent(
                        originator_id=UUID(r["originator_id"]),
                        originator_version=r["originator_version"],
                        topic=r["topic"],
                        state=r["state"].encode(),
                    )
                )
        app.recorder.insert_events(rows["event"])
        assert app.snapshots is not None
        app.snapshots.recorder.insert_events(rows["snapshot"])
        app.close()
        yield env


def test_a_store_main_wrote_verifies_and_reads_the_same(
    written_before: list[dict[str, Any]], base_store: dict[str, str]
) -> None:
    app = LeadLifecycle(load_policy("b2b_saas"), env=base_store)
    report = verify_store(app)
    assert not report.streams, report.streams
    assert not report.gaps
    expected = {r["originator_id"]: r["state"] for r in written_before if r["kind"] == "lead"}
    assert report.streams_checked == len(expected)
    for stream_id, state in expected.items():
        from_snapshot: Lead = app.repository.get(UUID(stream_id))
        from_events: Any = None
        for event in app.events.get(UUID(stream_id)):
            from_events = event.mutate(from_events)  # type: ignore[attr-defined]
        for lead in (from_snapshot, from_events):
            assert isinstance(lead, Lead)
            taken = Lead.Snapshot.take(lead)
            # The snapshot's own recorded time is not part of the lead.
            assert _without_time(app.mapper.to_stored_event(taken).state) == _without_time(
                state.encode()
            ), stream_id
    app.close()


def test_this_checkout_goes_on_from_a_store_main_wrote(base_store: dict[str, str]) -> None:
    """More of the same stream, processed on the store main wrote: the leads it had are
    loaded from its events and snapshots, and every chain still verifies."""
    from eventsourcing.persistence import Tracking  # noqa: PLC0415

    from contracts import ContractError, decode_interaction  # noqa: PLC0415
    from leadflow.simulator import SimulationConfig, simulate  # noqa: PLC0415

    config = SimulationConfig(
        leads=stored_events_dump.SIM_LEADS,
        seed=stored_events_dump.SIM_SEED,
        noise=stored_events_dump.NOISE,
    )
    decoded = []
    for line in simulate(config).lines():
        try:
            decoded.append(decode_interaction(line))
        except ContractError:
            continue
    more = decoded[stored_events_dump.INTERACTIONS : stored_events_dump.INTERACTIONS + 200]
    app = LeadLifecycle(load_policy("b2b_saas"), env=base_store)
    before = app.recorder.max_notification_id() or 0
    app.process(more, Tracking("dump:0", 10_000))
    assert (app.recorder.max_notification_id() or 0) > before
    report = verify_store(app)
    assert not report.streams, report.streams
    app.close()


def _without_time(state: bytes) -> dict[str, Any]:
    import orjson  # noqa: PLC0415

    decoded: dict[str, Any] = orjson.loads(state)
    decoded.pop("timestamp", None)
    return decoded


def test_events_are_the_objects_their_dataclass_would_make() -> None:
    """Every event the lead makes has the attributes that its class's own ``__init__`` gives
    the same values (not in its order: an encoded event's stored state is its bytes); the
    lead moves its version and modified time and keeps the event pending; a missing or
    unknown attribute is refused as ``__init__`` refuses it, before anything changes."""
    from datetime import UTC, datetime  # noqa: PLC0415

    import orjson  # noqa: PLC0415

    from contracts import decode_interaction  # noqa: PLC0415
    from tests.unit.examples import form  # noqa: PLC0415

    policy = load_policy("b2b_saas")
    first = decode_interaction(orjson.dumps(form(lead_id="L-objects")))
    lead = Lead.register("L-objects", first, policy, anonymous=False)
    lead.record(first, policy)
    erased = {
        "lead_key": "L-objects",
        "occurred_at": datetime(2031, 1, 1, tzinfo=UTC),
        "interaction_id": None,
        "rule": "personal_data_erased",
        "policy_name": policy.name,
        "policy_version": policy.version,
        "interactions": 1,
        "visitors": [],
        "merged_into": None,
        "reference": None,
    }
    lead.trigger_event(Lead.PersonalDataErased, **erased)
    pending = list(lead.pending_events)
    assert [e.originator_version for e in pending] == list(range(1, len(pending) + 1))
    assert {type(e).__name__ for e in pending} >= {"Registered", "StageChanged"}
    assert lead.version == len(pending)
    assert lead.modified_on == pending[-1].timestamp
    assert lead.chain_head == pending[-1].chain  # type: ignore[attr-defined]
    for event in pending:
        # The encoded state each carries until it is stored is no attribute (STATE).
        attributes = {k: v for k, v in vars(event).items() if k != STATE}
        assert STATE in vars(event)
        made = type(event)(**attributes)
        assert vars(made) == attributes
    with pytest.raises(TypeError, match="has no colour"):
        lead.trigger_event(Lead.PersonalDataErased, **erased, colour="red")
    with pytest.raises(TypeError, match="needs"):
        lead.trigger_event(Lead.ScoreChanged, score=1.0)
    assert lead.version == len(pending) == len(lead.pending_events)
