"""Personal data: the contracts mark it, the store keeps it only sealed with a key per lead, no
lifecycle event carries it, and ``forget`` destroys the key: the values read as erased, while
stages, timing, attribution and the hash chain stay exactly as they were."""

from __future__ import annotations

import csv
import io
import random
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from eventsourcing.sqlite import SQLiteFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from contracts import (
    PERSONAL_FIELDS,
    ContractError,
    Interaction,
    InteractionType,
    LifecycleEventType,
    Topics,
    decode_interaction,
    decode_lifecycle_event,
    encode,
    interaction_from_stored,
    split_personal,
)
from contracts.lifecycle_events import PersonalDataErased
from contracts.schema import all_schemas
from contracts.vocabulary import FormKind
from leadflow import wiring
from leadflow.audit import CSV_COLUMNS, history_document, render_history, write_export
from leadflow.replay import Replay, projections_for, replay_lines
from leadflow.reporting.history import history_rows
from leadflow.settings import Settings
from leadflow.simulator import SimulationConfig, simulate
from leadflow.whatif import compare, file_lines, store_lines
from lifecycle.adapters.key_stores import SQLiteKeyStore
from lifecycle.application import LeadLifecycle
from lifecycle.audit import verify_store
from lifecycle.errors import LeadNotFoundError, MasterKeyError, PersonalDataError
from lifecycle.export import KeptInteractions
from lifecycle.history import lead_history
from lifecycle.lead import Lead
from lifecycle.personal import ERASED, KEY_TABLE, MASTER_KEY, MemoryKeyStore, Vault, new_master_key
from lifecycle.policy import load_policy
from streams.relay import Page, messages_of
from tests.unit.examples import interactions
from tests.unit.lifecycle_support import content, form, page_view, qualification

T0 = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)
ADA = {
    "email": "ada.lovelace@analytical.example",
    "phone": "+44 20 7946 0001",
    "first_name": "Augusta",
    "last_name": "Lovelace-King",
    "company": "Analytical Engines Ltd",
    "message": "Please call me about the difference engine",
}
NOTES = "Spoke with Augusta: budget approved by her board"


def _message(k: int, kind: str, data: dict[str, Any], **envelope: Any) -> bytes:
    return orjson.dumps(
        {
            "id": f"i-{k}",
            "type": kind,
            "version": 2 if kind == "form_submitted" else 1,
            "occurred_at": (T0 + timedelta(hours=k)).isoformat(),
            "channel": "seo",
            **envelope,
            "data": data,
        }
    )


def journey(lead: str = "L-ada", anonymous_id: str = "cookie-ada") -> list[bytes]:
    """A visitor's pages, then a demo request with every personal field (the visitor is
    merged into the lead), an account, sales' qualification with notes, and a deal."""
    profile = {"seniority": "vp", "company_size": 400, "industry": "software", "country": "gb"}
    return [
        _message(0, "page_viewed", {"url": "/"}, anonymous_id=anonymous_id),
        _message(1, "form_submitted", {"form_kind": "newsletter", "email": ADA["email"]},
                 anonymous_id=anonymous_id),
        _message(2, "form_submitted", {"form_kind": "demo_request", **ADA, **profile},
                 lead_id=lead, anonymous_id=anonymous_id, campaign="spring"),
        _message(3, "account_created", {"email": ADA["email"], "first_name": "Augusta"},
                 lead_id=lead),
        _message(4, "qualification_recorded",
                 {"need": True, "budget": True, "authority": True, "timing": True,
                  "accepted": True, "notes": NOTES}, lead_id=lead),
        _message(5, "opportunity_opened", {"opportunity_id": "o-1", "amount": 9000.0},
                 lead_id=lead),
        _message(6, "deal_won", {"amount": 9000.0}, lead_id=lead),
        _message(7, "page_viewed", {"url": "/thanks"}, anonymous_id=anonymous_id),
    ]  # fmt: skip


PERSONAL_VALUES = [*ADA.values(), NOTES]


def _app(env: dict[str, str] | None = None) -> LeadLifecycle:
    app = LeadLifecycle(load_policy("b2b_saas"), env)
    app.process([decode_interaction(line) for line in journey()])
    return app


def _sqlite_env(tmp_path: Path, master: str | None = None) -> dict[str, str]:
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "events.sqlite"),
    }
    if master is not None:
        env[MASTER_KEY] = master
    return env


def _document(app: LeadLifecycle) -> dict[str, Any]:
    projections = projections_for(app.policy)
    for event in app.lifecycle_events():
        projections.apply(event)
    return projections.to_document()


def _published(app: LeadLifecycle) -> list[bytes]:
    page = Page(last=0)
    messages_of(Topics(), app.lifecycle_events(), page)
    return [key + b"\0" + value for _topic, key, value in page.messages]


def _contains_any(blob: bytes, values: list[str]) -> list[str]:
    found = []
    for value in values:
        if value.encode() in blob or orjson.dumps(value)[1:-1] in blob:
            found.append(value)
    return found


# -- the contracts -----------------------------------------------------------------------------


def test_the_contracts_mark_contact_details_names_and_free_text_as_personal() -> None:
    marked = {t: fields for t, fields in PERSONAL_FIELDS.items() if fields}
    assert marked == {
        InteractionType.FORM_SUBMITTED: frozenset(
            {"email", "phone", "first_name", "last_name", "company", "message"}
        ),
        InteractionType.ACCOUNT_CREATED: frozenset({"email", "first_name", "last_name"}),
        InteractionType.QUALIFICATION_RECORDED: frozenset({"notes"}),
    }


def test_the_json_schemas_say_x_personal_on_exactly_those_fields() -> None:
    for name, schema in all_schemas().items():
        if not name.startswith("interaction."):
            assert b"x-personal" not in orjson.dumps(schema), name  # the wire carries none
            continue
        properties = schema["properties"]["data"].get("properties", {})
        marked = {field for field, spec in properties.items() if spec.get("x-personal")}
        assert marked == PERSONAL_FIELDS[InteractionType(name.split(".")[1])], name


@settings(max_examples=60, deadline=None)
@given(interaction=interactions())
def test_splitting_out_the_personal_values_and_putting_them_back_is_the_interaction(
    interaction: Interaction,
) -> None:
    envelope, personal = split_personal(interaction)
    # The same values as a JSON round trip of the data gives (what it did before it skipped
    # the round trip), of the same types, in the same order.
    names = PERSONAL_FIELDS[interaction.type]
    as_json = [
        (k, v) for k, v in orjson.loads(orjson.dumps(interaction.data)).items() if v is not None
    ]
    assert list(envelope["data"].items()) == [(k, v) for k, v in as_json if k not in names]
    assert list(personal.items()) == [(k, v) for k, v in as_json if k in names]
    assert [type(v) for v in (*envelope["data"].values(), *personal.values())] == [
        type(v) for k, v in sorted(as_json, key=lambda kv: kv[0] in names)
    ]
    assert set(personal) <= PERSONAL_FIELDS[interaction.type]
    assert not set(envelope["data"]) & PERSONAL_FIELDS[interaction.type]
    assert interaction_from_stored(envelope, personal) == interaction
    without = interaction_from_stored(envelope)
    assert all(getattr(without.data, name) is None for name in PERSONAL_FIELDS[interaction.type])


# -- the vault ---------------------------------------------------------------------------------


def test_sealed_values_open_with_their_streams_key_only() -> None:
    vault = Vault(MemoryKeyStore(), new_master_key())
    lead, other = Lead.create_id("A"), Lead.create_id("B")
    sealed = vault.seal(lead, "i-1", {"email": "a@example.com"})
    assert sealed is not None
    assert "a@example.com" not in sealed
    assert vault.open(lead, "i-1", sealed) == {"email": "a@example.com"}
    assert vault.seal(lead, "i-2", {}) is None
    vault.seal(other, "i-1", {"email": "b@example.com"})
    with pytest.raises(PersonalDataError):  # moved to another event: does not open
        vault.open(lead, "i-2", sealed)
    assert vault.open(other, "i-1", sealed) is None  # another stream's key: not its own


def test_a_destroyed_key_opens_nothing_and_no_new_key_is_made_for_the_stream() -> None:
    vault = Vault(MemoryKeyStore(), new_master_key())
    lead = Lead.create_id("A")
    sealed = vault.seal(lead, "i-1", {"email": "a@example.com"})
    assert sealed is not None
    assert vault.forget([lead], T0) == {lead}
    assert vault.open(lead, "i-1", sealed) is None
    assert vault.seal(lead, "i-2", {"email": "a@example.com"}) is None
    assert vault.forget([lead], T0) == set()  # twice: nothing left


def test_a_sqlite_store_refuses_another_master_key_and_works_without_one_for_forget(
    tmp_path: Path,
) -> None:
    env = _sqlite_env(tmp_path, new_master_key())
    app = _app(env)
    app.close()
    stranger = LeadLifecycle(load_policy("b2b_saas"), {**env, MASTER_KEY: new_master_key()})
    with pytest.raises(MasterKeyError, match="not the key"):
        stranger.process([decode_interaction(journey("L-other", "c-other")[2])])
    with pytest.raises(MasterKeyError, match="not the key"):
        lead_history(stranger, "L-ada")
    stranger.close()

    keyless = LeadLifecycle(
        load_policy("b2b_saas"), {k: v for k, v in env.items() if k != MASTER_KEY}
    )
    with pytest.raises(MasterKeyError, match="no master key"):
        lead_history(keyless, "L-ada")
    assert keyless.forget("L-ada", at=T0).destroyed
    history = lead_history(keyless, "L-ada")  # erased values need no key to read as erased
    assert {v for e in history.entries if e.personal for v in e.personal.values()} == {ERASED}
    keyless.close()


def test_reading_a_store_never_creates_the_key_table(tmp_path: Path) -> None:
    env = _sqlite_env(tmp_path, new_master_key())
    app = LeadLifecycle(load_policy("b2b_saas"), env)
    app.process([decode_interaction(journey()[0])])  # no personal value: no key, no table
    assert isinstance(app.factory, SQLiteFactory)
    assert SQLiteKeyStore(app.factory.datastore).get_many([Lead.create_id("L-ada")]) == {}
    lead_history(app, "anon:cookie-ada")
    with sqlite3.connect(tmp_path / "events.sqlite") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert KEY_TABLE not in tables
    app.close()


# -- the store and the wire --------------------------------------------------------------------


def test_the_store_keeps_each_interaction_whole_with_its_personal_values_sealed() -> None:
    app = _app()
    history = lead_history(app, "L-ada")
    kept = [e for e in history.entries if e.kept is not None]
    demo = next(e for e in kept if e.event.interaction_id == "i-2")
    assert demo.personal == ADA
    assert demo.kept is not None
    assert interaction_from_stored(demo.kept) == decode_interaction(journey()[2])
    notes = next(e for e in kept if e.event.interaction_id == "i-4")
    assert notes.personal == {"notes": NOTES}
    stored = b"".join(n.state for n in app.recorder.select_notifications(start=0, limit=10_000))
    assert _contains_any(stored, PERSONAL_VALUES) == []


def test_no_personal_value_is_in_any_stored_row_of_sqlite(tmp_path: Path) -> None:
    env = _sqlite_env(tmp_path, new_master_key())
    _app(env).close()
    with sqlite3.connect(tmp_path / "events.sqlite") as db:
        rows = b"".join(
            bytes(row[0]) for table in ("stored_events", "stored_snapshots")
            for row in db.execute(f"SELECT state FROM {table}")
        )  # fmt: skip
    assert rows
    assert _contains_any(rows, PERSONAL_VALUES) == []


def test_no_published_message_carries_a_personal_value() -> None:
    app = _app()
    published = b"\n".join(_published(app))
    assert b"interaction_recorded" in published
    assert _contains_any(published, PERSONAL_VALUES) == []


_MARK = "\u00a7pii\u00a7"


@st.composite
def with_personal_values(draw: st.DrawFn) -> Interaction:
    """An interaction of a type with personal fields, each of them set to a value no other
    field can hold by chance."""
    kind = draw(
        st.sampled_from(
            [
                InteractionType.FORM_SUBMITTED,
                InteractionType.ACCOUNT_CREATED,
                InteractionType.QUALIFICATION_RECORDED,
            ]
        )
    )
    interaction = draw(interactions(kind))
    values = {
        name: _MARK + draw(st.text(min_size=1, max_size=20)).strip() + f"{n}"
        for n, name in enumerate(sorted(PERSONAL_FIELDS[kind]))
    }
    return replace(interaction, data=replace(interaction.data, **values))  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(with_personal_values(), min_size=1, max_size=4))
def test_for_any_interaction_no_wire_event_carries_its_personal_values(
    batch: list[Interaction],
) -> None:
    app = LeadLifecycle(load_policy("b2b_saas"))
    app.process(batch)
    values = [
        getattr(i.data, name)
        for i in batch
        for name in PERSONAL_FIELDS[i.type]
        if getattr(i.data, name) is not None
    ]
    published = b"\n".join(_published(app))
    assert _contains_any(published, values) == []
    assert _MARK.encode() not in published
    assert orjson.dumps(_MARK)[1:-1] not in published


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(with_personal_values(), min_size=1, max_size=4))
def test_stages_scores_and_touches_do_not_depend_on_personal_values(
    batch: list[Interaction],
) -> None:
    def facts(interactions: list[Interaction]) -> list[tuple[Any, ...]]:
        app = LeadLifecycle(load_policy("b2b_saas"))
        app.process(interactions)
        return [
            (e.lead_id, e.sequence, e.type, e.occurred_at, e.interaction_id, e.data)
            for e in app.lifecycle_events()
        ]

    blanked = [
        replace(i, data=replace(i.data, **dict.fromkeys(PERSONAL_FIELDS[i.type])))  # type: ignore[arg-type]
        for i in batch
    ]
    assert facts(batch) == facts(blanked)


# -- forget ------------------------------------------------------------------------------------


def test_forget_erases_every_personal_value_and_nothing_else() -> None:
    app = _app()
    before = _document(app)
    events_before = list(app.lifecycle_events())

    erasure = app.forget("L-ada", at=T0 + timedelta(days=30), reference="DSR-7")

    assert erasure.streams == ("L-ada", "anon:cookie-ada")
    assert set(erasure.destroyed) == {"L-ada", "anon:cookie-ada"}
    assert erasure.recorded == ("L-ada", "anon:cookie-ada")
    after = list(app.lifecycle_events())
    assert after[: len(events_before)] == events_before  # nothing stored changed
    added = after[len(events_before) :]
    assert [e.type for e in added] == [LifecycleEventType.PERSONAL_DATA_ERASED] * 2
    lead_erased, visitor_erased = (e.data for e in added)
    assert lead_erased == PersonalDataErased(
        interactions=3, visitors=("cookie-ada",), merged_into=None, reference="DSR-7"
    )
    assert visitor_erased == PersonalDataErased(
        interactions=1, visitors=(), merged_into="L-ada", reference="DSR-7"
    )
    assert _document(app) == before  # stages, timing, attribution, funnel
    assert verify_store(app).intact
    for lead in ("L-ada", "anon:cookie-ada"):
        history = lead_history(app, lead)
        values = {v for e in history.entries if e.personal for v in e.personal.values()}
        assert values == {ERASED}
        assert history.entries[-1].event.type is LifecycleEventType.PERSONAL_DATA_ERASED
    assert app.lead("L-ada").stage.value == "customer"


def test_forgetting_twice_is_harmless_and_forgetting_nobody_is_an_error() -> None:
    app = _app()
    app.forget("L-ada", at=T0)
    events = list(app.lifecycle_events())
    again = app.forget("L-ada", at=T0 + timedelta(days=1))
    assert again.already_erased
    assert list(app.lifecycle_events()) == events
    with pytest.raises(LeadNotFoundError):
        app.forget("nobody", at=T0)


def test_personal_values_that_arrive_after_forget_are_not_kept() -> None:
    app = _app()
    app.forget("L-ada", at=T0)
    later = _message(9, "form_submitted", {"form_kind": "contact", **ADA}, lead_id="L-ada")
    (outcome,) = app.process([decode_interaction(later)])
    assert outcome.status.value == "accepted"
    entry = next(e for e in lead_history(app, "L-ada").entries if e.event.interaction_id == "i-9")
    assert entry.personal == dict.fromkeys(sorted(ADA), ERASED)
    stored = b"".join(n.state for n in app.recorder.select_notifications(start=0, limit=10_000))
    assert _contains_any(stored, PERSONAL_VALUES) == []


def test_the_erasure_is_published_as_a_wire_event_without_personal_data() -> None:
    app = _app()
    app.forget("L-ada", at=T0, reference="DSR-7")
    erased = [
        decode_lifecycle_event(value.split(b"\0", 1)[1])
        for value in _published(app)
        if b"personal_data_erased" in value
    ]
    assert {e.lead_id for e in erased} == {"L-ada", "anon:cookie-ada"}
    assert all(e.interaction_id is None for e in erased)


# -- the commands' documents -------------------------------------------------------------------


def test_history_export_and_the_report_show_erased_values(tmp_path: Path) -> None:
    app = _app()
    shown = history_document(lead_history(app, "L-ada"))
    recorded = [e for e in shown["history"] if e["personal"]]
    assert recorded[0]["personal"]["email"] == ADA["email"]
    assert recorded[0]["recorded_interaction"]["data"]["email"] == ADA["email"]
    app.forget("L-ada", at=T0)
    history = lead_history(app, "L-ada")
    document = history_document(history)
    text = orjson.dumps(document)
    assert _contains_any(text, PERSONAL_VALUES) == []
    assert b'"email":"[erased]"' in text
    console = Console(file=io.StringIO(), width=200)
    render_history(document, console)
    assert "personal: company [erased], email [erased]" in console.file.getvalue()  # type: ignore[attr-defined]

    rows = history_rows(
        (e.event for e in history.entries),
        {e.event.sequence: e.personal for e in history.entries if e.personal},
    )
    details = " ".join(str(r["detail"]) for r in rows)
    assert "email [erased]" in details
    assert "personal data erased (3 interactions with personal values" in details
    assert _contains_any(details.encode(), PERSONAL_VALUES) == []

    for fmt in ("jsonl", "csv"):
        sink = io.BytesIO()
        write_export(app, fmt, lead_key="L-ada", stdout=sink, personal=True)
        exported = sink.getvalue()
        assert _contains_any(exported, PERSONAL_VALUES) == []
        assert b"[erased]" in exported
    plain = io.BytesIO()
    write_export(app, "jsonl", lead_key="L-ada", stdout=plain)
    assert b"[erased]" not in plain.getvalue()  # personal values only when asked for


def test_export_with_personal_values_adds_them_beside_the_wire_event() -> None:
    app = _app()
    sink = io.BytesIO()
    write_export(app, "jsonl", lead_key="L-ada", stdout=sink, personal=True)
    lines = [orjson.loads(line) for line in sink.getvalue().splitlines()]
    with_values = [line for line in lines if "personal" in line]
    assert with_values[0]["personal"] == ADA
    for line in lines:
        line.pop("personal", None)
        decode_lifecycle_event(orjson.dumps(line))  # the rest is the wire event
    table = io.BytesIO()
    write_export(app, "csv", lead_key="L-ada", stdout=table, personal=True)
    rows = list(csv.reader(io.StringIO(table.getvalue().decode())))
    assert rows[0][-1] == "personal" == CSV_COLUMNS[-1]
    assert next(orjson.loads(r[-1]) for r in rows[1:] if r[-1]) == ADA


# -- what-if from the store --------------------------------------------------------------------


def _simulated() -> list[bytes]:
    return list(simulate(SimulationConfig(leads=40, seed=11)).lines())


def test_whatif_from_the_store_equals_whatif_from_the_file_it_was_fed(tmp_path: Path) -> None:
    lines = _simulated()
    app = LeadLifecycle(load_policy("b2b_saas"))
    decoded = []
    for line in lines:
        try:
            decoded.append(decode_interaction(line))
        except ContractError:
            continue
    for start in range(0, len(decoded), 97):
        app.process(decoded[start : start + 97])
    path = tmp_path / "stored.jsonl"
    assert store_lines(app, path) == 0  # none missing
    stored = list(file_lines(path))
    assert b"@" not in b"".join(stored)  # no email, nothing personal: none is opened
    # Sorted in runs of 7 on disk and merged: the same lines in the same order.
    store_lines(app, tmp_path / "in-runs.jsonl", run_lines=7)
    assert list(file_lines(tmp_path / "in-runs.jsonl")) == stored
    assert len(stored) > 7 * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in-runs.jsonl", "stored.jsonl"]
    current, other = load_policy("b2b_saas"), load_policy("agency")
    from_store = compare(lambda: stored, current, other, half_life_days=3).document()
    from_file = compare(lambda: lines, current, other, half_life_days=3).document()
    assert {k: v for k, v in from_store.items() if k != "interactions"} == {
        k: v for k, v in from_file.items() if k != "interactions"
    }
    app.forget(next(i.lead_id for i in decoded if i.lead_id), at=T0)
    store_lines(app, path, run_lines=7)  # in sorted runs merged: the same lines
    erased = list(file_lines(path))
    assert compare(lambda: erased, current, other, half_life_days=3).document() == from_store


def test_whatif_from_the_store_applies_its_interactions_in_the_order_they_were_applied(
    tmp_path: Path,
) -> None:
    """A late interaction is placed where its source's watermark stood (``lifecycle.ordering``)
    and the store records it there. Ordered again, the store's interactions would place it by
    the watermark of their recorded order, elsewhere: so the what-if from the store applies
    them as recorded (``lateness=None``), and its current side is what live decided."""
    second = 1 / 86_400  # in days, as the examples take times
    lines = [
        encode(i)
        for i in (
            page_view(id="a", at=0),
            form(FormKind.DEMO_REQUEST, id="b", at=100 * second),
            page_view(id="c", lead_id="L2", at=200 * second),
            qualification(id="x", at=50 * second),  # late: placed at 190 s, after b
        )
    ]
    policy = load_policy("b2b_saas")
    live = replay_lines(lines, policy)
    assert live.app is not None
    assert live.counts.late == 1
    path = tmp_path / "stored.jsonl"
    store_lines(live.app, path)
    stored = list(file_lines(path))

    def events(replay: Replay) -> list[tuple[Any, ...]]:
        assert replay.app is not None
        return sorted(content(e) for e in replay.app.lifecycle_events())

    assert events(replay_lines(stored, policy, lateness=None)) == events(live)
    # Ordered again, x goes before b (placed at 100 s less the lateness): another outcome.
    assert events(replay_lines(stored, policy)) != events(live)


# -- settings and wiring -----------------------------------------------------------------------


def test_the_master_key_is_made_once_with_mode_0600_and_read_back(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    assert wiring.master_key(settings, create=False) is None
    made = wiring.master_key(settings)
    assert made is not None
    path = settings.master_key_path
    assert path.stat().st_mode & 0o777 == 0o600
    assert wiring.master_key(settings) == made
    assert wiring.event_store_env(settings)[MASTER_KEY] == made
    given_key = new_master_key()
    configured = Settings(data_dir=tmp_path / "data", master_key=given_key)
    assert wiring.event_store_env(configured)[MASTER_KEY] == given_key


def test_processes_making_the_master_key_at_once_all_read_the_one_made(tmp_path: Path) -> None:
    """The key file appears whole or not at all (written aside, then linked into place): a
    process starting at the same moment as the one that makes it never reads it empty."""
    import multiprocessing  # noqa: PLC0415

    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    context = multiprocessing.get_context("fork")
    for _ in range(5):
        settings.master_key_path.unlink(missing_ok=True)
        with context.Pool(8) as pool:
            keys = pool.map(_made_key, [settings] * 32)
        assert len(set(keys)) == 1, "every process reads the one key made"
        assert [p.name for p in settings.data_dir.iterdir()] == ["master.key"]  # no drafts


def _made_key(settings: Settings) -> str:
    key = wiring.master_key(settings)
    assert key is not None
    return key


def test_a_malformed_master_key_is_named_but_never_shown(tmp_path: Path) -> None:
    secret = "not-a-key-" + "x" * 20
    with pytest.raises(MasterKeyError) as raised:
        wiring.master_key(Settings(data_dir=tmp_path, master_key=secret))
    assert "LEADFLOW_MASTER_KEY" in str(raised.value)
    assert secret not in str(raised.value)
    short = Settings(data_dir=tmp_path, master_key="c2hvcnQ=")
    with pytest.raises(MasterKeyError, match="32 bytes"):
        wiring.master_key(short)


def test_the_raw_topics_get_their_retention_when_leadflow_creates_them() -> None:
    settings = Settings(topic_prefix="p.", interactions_retention_hours=48)
    connection = wiring.kafka_connection(settings)
    assert connection.topic_configs == {
        "p.leadflow.interactions.v1": {"retention.ms": str(48 * 3_600_000)},
        "p.leadflow.rejected.v1": {"retention.ms": str(720 * 3_600_000)},
    }
    assert Settings().interactions_retention_hours == 168


def test_forgetting_a_lead_with_a_thousand_visitors_records_events_that_each_fit_a_message() -> (
    None
):
    # Anonymous ids at the contracts' longest, in 4-byte UTF-8 characters.
    wide = "\U0001d518"
    ids = [wide * 190 + f"{n:010d}" for n in range(1500)]  # one event would hold 1.2 MB
    app = LeadLifecycle(load_policy("b2b_saas"))
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        app.process([page_view(lead_id=None, anonymous_id=a, at=0, id=f"pv-{a}") for a in part])
        app.process(
            [form(FormKind.CONTACT, lead_id="L1", anonymous_id=a, at=1, id=f"f-{a}") for a in part]
        )
    assert len(app.lead("L1").linked_anonymous_ids) == len(ids)

    app.forget("L1", at=T0)

    erased = [e for e in app.lead_events("L1") if e.type is LifecycleEventType.PERSONAL_DATA_ERASED]
    assert len(erased) == 3  # 500 visitors an event
    assert max(len(encode(e)) for e in erased) < 1024 * 1024
    erasures = [e.data for e in erased if isinstance(e.data, PersonalDataErased)]
    assert len(erasures) == len(erased)
    assert sorted(v for d in erasures for v in d.visitors) == sorted(ids)
    assert [d.interactions for d in erasures][1:] == [0, 0]  # counted once
    assert verify_store(app).intact


def test_store_lines_orders_by_recorded_time_then_notification_id_in_bounded_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two workers' interactions: recorded times interleave with notification ids.
    rng = random.Random(3)
    kept = [(rng.randrange(10**15, 2 * 10**15), n, b'{"n":%d}' % n) for n in range(1, 500)]
    kept += [(kept[5][0], 900, b'{"n":900}')]  # a tie in time: the notification id decides

    def read(self: Any) -> Any:
        self.missing = 2
        return iter(kept)

    monkeypatch.setattr(KeptInteractions, "__iter__", read)
    path = tmp_path / "stored.jsonl"
    assert store_lines(cast(Any, None), path, run_lines=13) == 2
    expected = [line for _, _, line in sorted(kept)]
    assert list(file_lines(path)) == expected
    assert [p.name for p in tmp_path.iterdir()] == ["stored.jsonl"]  # runs deleted
