"""The projection worker over the real broker: live == batch, rebuild from offset 0 == live, and
bad messages on the rejected topic; the HTTP API serves the same documents as a batch fold."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

import lifecycle
from contracts import LifecycleEvent, Spend, decode_spend, encode, lead_key
from leadflow import wiring
from leadflow.replay import projections_for, replay_lines
from leadflow.settings import Settings
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.policy import load_policy
from projections import Projections
from projections.money import parse_rates
from streams.connection import ensure_topics
from streams.http_api import serve_projector
from streams.projector import (
    ProjectionState,
    ProjectorConfig,
    end_offsets_of,
    faust_broker_url,
)
from tests.integration.harness import (
    isolated_settings,
    lead_events_on_topic,
    publish,
    rejections_on_topic,
    run_in_process_until_drained,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

GARBAGE_EVENT = b'{"event_id": "e-1", "type": "stage_changed", "version": 1}'
GARBAGE_SPEND = b'{"id": "s-1", "channel": "carrier_pigeon"}'
SECTIONS = ("pipeline", "timing", "attribution", "funnel", "accounts")


@dataclass
class Running:
    """A projector running in this test's event loop, and its API's base URL."""

    url: str
    state: ProjectionState
    session: aiohttp.ClientSession

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.url + path) as response:
            return response.status, orjson.loads(await response.read())

    async def wait_until_folded(self, settings: Settings, timeout: float = 45.0) -> None:
        """Until the API is live and has read every message now on both topics."""
        names = wiring.topics(settings)
        ends = await end_offsets_of(
            wiring.kafka_connection(settings), (names.lead_events, names.spend)
        )
        assert ends, "no partitions found"
        deadline = time.monotonic() + timeout
        health: Any = None
        while time.monotonic() < deadline:
            status, health = await self.get("/health")
            positions = health["positions"]
            if (
                status == 200
                and health["status"] == "live"
                and all(positions.get(f"{t}:{p}", 0) >= end for (t, p), end in ends.items())
            ):
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"not folded after {timeout} s: {health}")

    async def documents(self) -> dict[str, Any]:
        found = {}
        for name in SECTIONS:
            status, found[name] = await self.get(f"/{name}")
            assert status == 200, found[name]
        return found


@asynccontextmanager
async def projector(
    settings: Settings, state: ProjectionState | None = None
) -> AsyncIterator[Running]:
    """The projection worker and its HTTP API (on a free port), stopped on leaving; ``state``:
    its read models (default: ``Projections()``)."""
    connection = wiring.kafka_connection(settings)
    config = ProjectorConfig(
        broker=faust_broker_url(settings.bootstrap_servers),
        topic_prefix=settings.topic_prefix,
        group_id="test-projector",
        datadir=settings.data_dir / "projector",
    )
    state = state if state is not None else ProjectionState()
    stop = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve_projector(
            config,
            connection,
            state,
            stop,
            host="127.0.0.1",
            port=0,
            partitions=settings.topic_partitions,
            on_listening=port.set_result,
        )
    )
    # a Task and a bare Future: their set is typed by what both are
    watched: set[asyncio.Future[Any]] = {task, port}
    done, _ = await asyncio.wait(watched, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    async with aiohttp.ClientSession() as session:
        try:
            yield Running(f"http://127.0.0.1:{port.result()}", state, session)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


def batch(events: list[LifecycleEvent], spend: list[Spend]) -> dict[str, Any]:
    """What Projections applied directly gives, as the API would send it (through JSON)."""
    projections = Projections()
    projections.apply_all([*events, *spend])
    document = orjson.loads(orjson.dumps(projections.to_document()))
    assert isinstance(document, dict)
    return document


async def produce(
    settings: Settings, topic: str, messages: Sequence[tuple[bytes | None, bytes]]
) -> None:
    producer = wiring.kafka_connection(settings).producer()
    await producer.start()
    try:
        for delivery in [await producer.send(topic, v, key=k) for k, v in messages]:
            await delivery
    finally:
        await producer.stop()


async def test_projector_serves_the_batch_answer_live_and_after_a_rebuild(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Given the real lifecycle's events for a simulated stream on the lead-events topic
    settings = isolated_settings(kafka_bootstrap, tmp_path)
    names = wiring.topics(settings)
    simulation = simulate(SimulationConfig(leads=60, days=60, seed=11))
    await publish(settings, simulation.lines())
    await run_in_process_until_drained(settings, timeout=90)
    events = await lead_events_on_topic(settings)
    assert len(events) > 500
    spend_lines = list(simulation.spend_lines())
    spend = [decode_spend(line) for line in spend_lines]
    half = len(spend_lines) // 2
    await produce(settings, names.spend, [(None, line) for line in spend_lines[:half]])

    async with projector(settings) as running:
        # When it rebuilds, then more arrives live: spend, duplicates and garbage
        await running.wait_until_folded(settings)
        duplicates = [(lead_key(e.lead_id), encode(e)) for e in events[::7]]
        await produce(settings, names.lead_events, [*duplicates, (b"x", GARBAGE_EVENT)])
        await produce(
            settings,
            names.spend,
            [(None, line) for line in spend_lines[half:]]
            + [(None, spend_lines[0]), (None, GARBAGE_SPEND)],
        )
        await running.wait_until_folded(settings)

        # Then the API's sections are the batch fold's
        expected = batch(events, spend)
        assert any(expected["attribution"]["lead"]["shapley"].values())  # not an empty model
        assert expected["accounts"]["funnel"]["opportunity"] > 0  # the simulator's B2B accounts
        assert any(expected["accounts"]["attribution"]["opportunity"]["shapley"].values())
        live = await running.documents()
        assert live == {name: expected[name] for name in SECTIONS}
        counts = running.state.counts
        assert counts.applied == len(events)
        assert counts.duplicates == len(duplicates)
        assert counts.spend_duplicates == 1
        assert counts.invalid == 2
        assert counts.failed == 0

        # and every lead's document is the batch one
        projections = Projections()
        projections.apply_all(events)
        for lead_id in sorted({e.lead_id for e in events})[:25]:
            status, document = await running.get(f"/leads/{lead_id}")
            assert status == 200
            assert document == orjson.loads(orjson.dumps(projections.lead_document(lead_id)))
        # and every account's document too (its buying group)
        for brief in expected["accounts"]["list"][:10]:
            account_id = brief["account_id"]
            status, document = await running.get(f"/accounts/{account_id}")
            assert status == 200
            assert document == orjson.loads(
                orjson.dumps(projections.accounts.account_document(account_id))
            )
            assert len(document["buying_group"]) == brief["people"]
        assert (await running.get("/accounts/nobody"))[0] == 404

    # When a new projector rebuilds from offset 0
    async with projector(settings) as rebuilt:
        await rebuilt.wait_until_folded(settings)
        # Then it gives exactly the live answer
        assert await rebuilt.documents() == live

    # And the garbage is on the rejected topic with its bytes and position (once per run)
    ours = (names.lead_events, names.spend)
    rejections = [
        r
        for r in await rejections_on_topic(settings)
        if r.source is not None and r.source.topic in ours
    ]
    by_topic = {(r.source.topic, r.original) for r in rejections if r.source is not None}
    assert by_topic == {(names.lead_events, GARBAGE_EVENT), (names.spend, GARBAGE_SPEND)}
    assert len(rejections) == 4
    assert all(r.problems for r in rejections)


async def test_api_errors_name_the_problem(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=2)
    connection = wiring.kafka_connection(settings)
    await ensure_topics(connection, wiring.topics(settings).all(), settings.topic_partitions)
    async with projector(settings) as running:
        await running.wait_until_folded(settings)
        status, body = await running.get("/leads/nobody")
        assert (status, body["error"], body["lead_id"]) == (404, "unknown lead", "nobody")
        status, body = await running.get("/attribution?milestone=moon")
        assert (status, body["parameter"]) == (400, "milestone")
        status, body = await running.get("/attribution?milestone=sql&model=astrology")
        assert (status, body["parameter"]) == (400, "model")
        status, body = await running.get("/attribution?milestone=sql&model=linear")
        assert status == 200
        assert set(body) == {"sql", "by_campaign"}
        assert set(body["sql"]) == {"linear"}
        status, body = await running.get("/attribution?milestone=customer&model=shapley")
        assert status == 200
        assert set(body["customer"]) == set(body["by_campaign"]["customer"]) == {"shapley"}
        status, body = await running.get("/health")
        assert (status, body["status"], body["lag"]) == (200, "live", 0)


def _poisonous_lead(lead: str) -> list[tuple[bytes, bytes]]:
    """A lead created (and entering) at opportunity, won at 1.7e308 (a valid JSON number,
    published before the contracts bounded amounts: the decoder now refuses it), then touched
    again."""
    policy = {"name": "b2b_saas", "version": "1"}

    def event(sequence: int, kind: str, data: dict[str, Any]) -> tuple[bytes, bytes]:
        message = {
            "event_id": f"{lead}:{sequence}",
            "lead_id": lead,
            "sequence": sequence,
            "type": kind,
            "version": 1,
            "occurred_at": f"2026-01-0{sequence}T10:00:00Z",
            "recorded_at": f"2026-01-0{sequence}T10:00:00Z",
            "policy": policy,
            "data": data,
        }
        return lead_key(lead), orjson.dumps(message)

    return [
        event(1, "lead_created", {"stage": "opportunity", "channel": "seo"}),
        event(
            2,
            "stage_changed",
            {"from_stage": None, "to_stage": "opportunity", "rule": "referral", "reason": ""},
        ),
        event(
            3,
            "stage_changed",
            {
                "from_stage": "opportunity",
                "to_stage": "customer",
                "rule": "deal_won",
                "reason": "won",
                "amount": 1.7e308,
                "currency": "EUR",
                "margin": 1.0,
            },
        ),
        event(
            4,
            "interaction_recorded",
            {"interaction_type": "email_engaged", "channel": "email", "sales_touch": False},
        ),
    ]


async def test_a_poisonous_lead_event_is_dead_lettered_and_every_section_still_answers(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Given three leads won at 1.7e308 on the lead-events topic (their sum overflows a float)
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=2)
    names = wiring.topics(settings)
    await ensure_topics(wiring.kafka_connection(settings), names.all(), settings.topic_partitions)
    messages = [m for n in range(3) for m in _poisonous_lead(f"rich-{n}")]
    poisonous = {value for _, value in messages if b"1.7e+308" in value}
    assert len(poisonous) == 3
    await produce(settings, names.lead_events, messages)

    async with projector(settings) as running:
        # When it has folded them
        await running.wait_until_folded(settings)

        # Then every section and every lead answers 200: the won events were skipped
        documents = await running.documents()
        assert documents["funnel"]["customers"] == 0
        assert documents["pipeline"]["by_stage"]["opportunity"] == 3
        status, lead = await running.get("/leads/rich-0")
        assert (status, lead["stage"], len(lead["touches"])) == (200, "opportunity", 1)
        assert running.state.counts.invalid == 3
        assert running.state.counts.applied == 9

        # and the same holds live, for such an event arriving after the rebuild
        await produce(settings, names.lead_events, _poisonous_lead("rich-live"))
        await running.wait_until_folded(settings)
        assert (await running.documents())["pipeline"]["by_stage"]["opportunity"] == 4
        live = await running.documents()

    # And a rebuild from offset 0 gives the same answer, and is not stopped by them either
    async with projector(settings) as rebuilt:
        await rebuilt.wait_until_folded(settings)
        assert await rebuilt.documents() == live

    # And each was dead-lettered with its original bytes, position and the field at fault
    rejections = [
        r
        for r in await rejections_on_topic(settings)
        if r.source is not None and r.source.topic == names.lead_events
    ]
    assert {r.original for r in rejections} == poisonous | {
        value for _, value in _poisonous_lead("rich-live") if b"1.7e+308" in value
    }
    assert len(rejections) == 4 + 4  # each projector dead-letters what it skipped
    assert {p.path for r in rejections for p in r.problems} == {"data.amount"}
    assert all("less than or equal to 100000000000000" in r.error for r in rejections)


async def test_the_live_fold_picks_up_a_partition_added_to_the_topic(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """``follow`` folds whatever arrives on every partition, and a partition added while it runs
    from its first offset (the projector is a full replica: no group, no rebalance)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewPartitions  # noqa: PLC0415

    from streams.projector import follow  # noqa: PLC0415

    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=2)
    connection = wiring.kafka_connection(settings)
    names = wiring.topics(settings)
    await ensure_topics(connection, names.all(), 2)
    state = ProjectionState()
    stop = asyncio.Event()
    live = asyncio.create_task(follow(connection, state, names, stop, refresh_seconds=0.5))
    producer = connection.producer(metadata_max_age_ms=500)  # sees the new partition soon
    await producer.start()
    try:
        before = [orjson.dumps({"n": n}) for n in range(4)]  # not valid: dead-lettered, counted
        for n, value in enumerate(before):
            await producer.send_and_wait(names.lead_events, value, partition=n % 2)
        admin = AIOKafkaAdminClient(**connection.client_kwargs())
        await admin.start()
        try:
            await admin.create_partitions({names.lead_events: NewPartitions(total_count=3)})
        finally:
            await admin.close()
        deadline = time.monotonic() + 30
        sent = False
        while not sent and time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # until its metadata knows the new partition
                await producer.send_and_wait(names.lead_events, b"{}", partition=2)
                sent = True
            await asyncio.sleep(0.5)
        assert sent
        while state.counts.events < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        await producer.stop()
        stop.set()
        await asyncio.wait_for(live, 30)
    assert state.counts.events == 5
    assert state.counts.invalid == 5
    assert state.positions == {
        (names.lead_events, 0): 2,
        (names.lead_events, 1): 2,
        (names.lead_events, 2): 1,
    }
    assert len(await rejections_on_topic(settings)) == 5


# Tight windows and few touch types, so that both change the credit of a 60-day stream.
CONVENTIONS_POLICY = """
[attribution]
touch_types = ["page_viewed", "form_submitted", "email_engaged", "meeting_held"]
half_life_days = 3.0

[attribution.lookback_days]
lead = 5
mql = 10
sql = 20
opportunity = 20
customer = 30
"""


async def test_touch_types_and_lookback_windows_are_the_same_live_and_in_replay(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Given a policy whose [attribution] keeps four touch types and tight windows
    preset = (Path(lifecycle.__file__).parent / "presets" / "b2b_saas.toml").read_text()
    path = tmp_path / "conventions.toml"
    path.write_text(preset[: preset.index("\n[attribution]")] + "\n" + CONVENTIONS_POLICY)
    policy = load_policy(path)
    settings = isolated_settings(kafka_bootstrap, tmp_path, policy=str(path))
    names = wiring.topics(settings)
    simulation = simulate(SimulationConfig(leads=60, days=60, seed=5))
    lines = list(simulation.lines())
    spend_lines = list(simulation.spend_lines())

    # When the real lifecycle and the projector fold it over the broker
    await publish(settings, lines)
    await run_in_process_until_drained(settings, timeout=90)
    await produce(settings, names.spend, [(None, line) for line in spend_lines])
    state = ProjectionState(projections=projections_for(policy))
    async with projector(settings, state) as running:
        await running.wait_until_folded(settings)
        live = await running.documents()

    # Then the sections are the replay's over the same lines, under the same policy
    replayed = replay_lines(lines, policy, spend_lines=spend_lines).document()
    expected = orjson.loads(orjson.dumps(replayed))
    assert live == {name: expected[name] for name in SECTIONS}
    # and the conventions changed the credit: not the default read models' answer
    default = replay_lines(lines, load_policy("b2b_saas"), spend_lines=spend_lines).document()
    assert live["attribution"] != orjson.loads(orjson.dumps(default["attribution"]))
    assert any(live["attribution"]["mql"]["shapley"].values())


def _in_two_currencies(lines: list[bytes]) -> list[bytes]:
    """The simulated lines with every other lead's deals in JPY (160 times the EUR amount)."""
    changed = []
    for line in lines:
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            changed.append(line)
            continue
        data = message.get("data") if isinstance(message, dict) else None
        lead = message.get("lead_id") if isinstance(message, dict) else None
        if (
            isinstance(data, dict)
            and data.get("currency") == "EUR"
            and isinstance(lead, str)
            and sum(map(ord, lead)) % 2
        ):
            data["currency"] = "JPY"
            data["amount"] = round(data["amount"] * 160, 2)
            changed.append(orjson.dumps(message))
        else:
            changed.append(line)
    return changed


async def test_money_in_two_currencies_is_never_summed_live_as_in_replay(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Given deals in EUR and in JPY, folded over the broker with and without exchange rates
    settings = isolated_settings(kafka_bootstrap, tmp_path)
    names = wiring.topics(settings)
    simulation = simulate(SimulationConfig(leads=300, days=240, seed=8))
    lines = _in_two_currencies(list(simulation.lines()))
    spend_lines = list(simulation.spend_lines())
    policy = load_policy("b2b_saas")
    rates = parse_rates("date,currency,EUR\n2020-01-01,JPY,0.0062\n", "rates.csv")
    await publish(settings, lines)
    await run_in_process_until_drained(settings, timeout=90)
    await produce(settings, names.spend, [(None, line) for line in spend_lines])

    for with_rates in (None, rates):
        state = ProjectionState(projections=projections_for(policy, rates=with_rates))
        async with projector(settings, state) as running:
            await running.wait_until_folded(settings)
            live = await running.documents()

        # Then every section is the replay's, and the two currencies stay apart
        replayed = replay_lines(lines, policy, spend_lines=spend_lines, rates=with_rates)
        expected = orjson.loads(orjson.dumps(replayed.document()))
        assert live == {name: expected[name] for name in SECTIONS}
        by_currency = live["attribution"]["revenue_by_currency"]
        assert {"EUR", "JPY"} <= set(by_currency), by_currency
        if with_rates is None:
            assert live["attribution"]["revenue"] is None  # several currencies, no rates
            assert live["funnel"]["currency"] is None
        else:
            assert live["attribution"]["revenue_currency"] == "EUR"
            eur, jpy = (sum(by_currency[c]["linear"].values()) for c in ("EUR", "JPY"))
            converted = sum(live["attribution"]["revenue"]["linear"].values())
            assert converted == pytest.approx(eur + jpy * 0.0062, rel=1e-6)
