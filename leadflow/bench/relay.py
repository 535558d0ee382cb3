"""CPU per lifecycle event of the relay's page making, without Kafka (``leadflow bench --only
relay``, or ``python -m leadflow.bench.relay``).

Simulated interactions (``leadflow.simulator``) are processed into a SQLite file store as the
worker does; then the whole notification log is turned into the relay's pages (``page_size``
notifications each: read, mapped to the wire, encoded, refusals made rejections) two ways, in
the same process, interleaved, the best of ``rounds`` rounds each (``time.process_time``: user
+ system):

- ``today``: the domain path, as the relay did it before ``lifecycle.outbox`` (the recorder's
  ``select_notifications``, ``mapper.to_domain_event``, ``to_lifecycle_event``, ``encode``);
- ``lean``: ``Relay.read_page`` as it is (``read_notifications``, ``WireEncoder``).

Each is also split into reading the page alone and the rest, and the lean path's rest into
encoding (``WireEncoder.page``) and making the messages (``published_messages``). Apart from
the pages, ``batching`` is what the relay's ``_send`` costs to put a page's messages into
aiokafka batches (partition choice, ``BatchBuilder.append``) with a producer that sends
nothing: the broker's work and the network are left out (the raw aiokafka baseline of
``leadflow bench`` measures those). The figures are taken with the garbage collector as the
worker process sets it (``leadflow.collector.tune_gc``; the relay runs in that process) and with
Python's default.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "relay_cpu_us"]


def _store(directory: Path, leads: int, seed: int, batch: int) -> Any:
    from eventsourcing.persistence import Tracking  # noqa: PLC0415

    from contracts import ContractError, decode_interaction  # noqa: PLC0415
    from leadflow.simulator import SimulationConfig, simulate  # noqa: PLC0415
    from lifecycle.application import LeadLifecycle  # noqa: PLC0415
    from lifecycle.policy import load_policy  # noqa: PLC0415

    # A little noise, for refusals (the lines the worker would dead-letter are left out).
    interactions = []
    for line in simulate(SimulationConfig(leads=leads, seed=seed, noise=0.02)).lines():
        try:
            interactions.append(decode_interaction(line))
        except ContractError:
            continue
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(directory / "events.sqlite"),
        "SQLITE_LOCK_TIMEOUT": "30",
        "PERSONAL_DATA_MASTER_KEY": base64.b64encode(b"\x07" * 32).decode(),
    }
    app = LeadLifecycle(load_policy("b2b_saas"), env=env)
    for offset in range(0, len(interactions), batch):
        chunk = interactions[offset : offset + batch]
        app.process(chunk, Tracking("bench:0", offset + len(chunk) - 1))
    return app, len(interactions)


def _today_page(app: Any, topics: Any, after: int, size: int) -> Any:
    """The relay's ``read_page`` before ``lifecycle.outbox``, as it was."""
    from contracts import LifecycleEventType, Rejection, encode, lead_key  # noqa: PLC0415
    from contracts.lifecycle_events import TransitionRefused  # noqa: PLC0415
    from lifecycle.application import to_lifecycle_event  # noqa: PLC0415
    from streams.deadletter import dead_letter  # noqa: PLC0415
    from streams.relay import Page  # noqa: PLC0415

    notifications = app.recorder.select_notifications(
        start=after, limit=size, inclusive_of_start=False
    )
    page = Page(last=notifications[-1].id if notifications else after)
    to_domain_event = app.mapper.to_domain_event
    messages = page.messages
    for event in (to_lifecycle_event(to_domain_event(n)) for n in notifications):
        key = lead_key(event.lead_id)
        value = encode(event)
        messages.append((topics.lead_events, key, value))
        page.events += 1
        if event.type is LifecycleEventType.STAGE_CHANGED:
            page.stage_changes += 1
            messages.append((topics.stage_changes, key, value))
        elif isinstance(event.data, TransitionRefused):
            page.refusals += 1
            rejection = Rejection.refused(
                value,
                reason=event.data.reason,
                source=None,
                rejected_at=event.recorded_at,
                interaction_id=event.interaction_id or "",
                lead_id=event.lead_id,
            )
            letter = dead_letter(rejection, key)
            messages.append((topics.rejected, letter.key or key, letter.value))
    return page


def _all_pages(read_page: Callable[[int], Any]) -> tuple[float, int, list[Any]]:
    pages = []
    position = 0
    cpu = time.process_time()
    while True:
        page = read_page(position)
        if page.last <= position:
            break
        pages.append(page)
        position = page.last
    return time.process_time() - cpu, sum(p.events for p in pages), pages


def _reads(read: Callable[[int], Sequence[Any]], last: Callable[[Any], int]) -> float:
    position = 0
    cpu = time.process_time()
    while rows := read(position):
        position = last(rows[-1])
    return time.process_time() - cpu


class _Unsent:
    """A producer for ``Relay._send`` that batches as the relay's does (aiokafka's
    ``BatchBuilder``, 256 KiB, uncompressed: ``KafkaConnection.producer``) and sends nothing."""

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(8))

    def create_batch(self) -> Any:
        from aiokafka.producer.message_accumulator import BatchBuilder  # noqa: PLC0415

        return BatchBuilder(256 * 1024, 0, is_transactional=False)

    async def send_batch(self, batch: Any, topic: str, partition: int) -> asyncio.Future[Any]:
        sent: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        sent.set_result(None)
        return sent


def _lean_parts(relay: Any, topics: Any, rows: list[Sequence[Any]]) -> tuple[float, float, float]:
    """CPU seconds of encoding, making messages and batching every page of ``rows``."""
    from streams.relay import Page, published_messages  # noqa: PLC0415

    cpu = time.process_time()
    encoded = [relay._encoder.page(page) for page in rows]
    encode = time.process_time() - cpu
    cpu = time.process_time()
    pages = []
    for page_rows, published in zip(rows, encoded, strict=True):
        page = Page(last=page_rows[-1][0])
        published_messages(topics, published, page)
        pages.append(page)
    messages = time.process_time() - cpu

    async def send_all() -> float:
        producer = _Unsent()
        cpu = time.process_time()
        for page in pages:
            await relay._send(producer, page)
        return time.process_time() - cpu

    return encode, messages, asyncio.run(send_all())


def relay_cpu_us(
    leads: int = 2000, rounds: int = 5, page_size: int = 5000, seed: int = 3, batch: int = 500
) -> dict[str, Any]:
    """The best CPU µs per lifecycle event of ``rounds`` rounds of making every page of the
    store's log, by the domain path (``today``) and by the relay (``lean``); reading alone
    (``*_read``) and in all; with the counts, and whether both made the same messages."""
    from contracts import Topics  # noqa: PLC0415
    from leadflow.collector import GC_THRESHOLDS  # noqa: PLC0415
    from lifecycle.adapters.notifications import read_notifications  # noqa: PLC0415
    from streams.relay import Relay  # noqa: PLC0415

    topics = Topics()
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        app, interactions = _store(Path(tmp), leads, seed, batch)
        recorder = app.recorder
        figures: dict[str, list[float]] = {}
        events = 0
        same = True
        default_thresholds = gc.get_threshold()
        try:
            for gc_label in ("gc tuned", "gc default"):
                if gc_label == "gc tuned":
                    gc.collect()
                    gc.freeze()
                    gc.set_threshold(*GC_THRESHOLDS)
                else:
                    gc.unfreeze()
                    gc.set_threshold(*default_thresholds)
                for _ in range(rounds):
                    spent, events, today = _all_pages(
                        lambda after: _today_page(app, topics, after, page_size)
                    )
                    figures.setdefault(f"today {gc_label}", []).append(spent / events)
                    relay = Relay(app, None, topics, page_size=page_size)  # type: ignore[arg-type]
                    spent, lean_events, lean = _all_pages(relay.read_page)
                    figures.setdefault(f"lean {gc_label}", []).append(spent / lean_events)
                    same = same and lean_events == events and lean == today
                    del today, lean
                    spent = _reads(
                        lambda after: recorder.select_notifications(
                            start=after, limit=page_size, inclusive_of_start=False
                        ),
                        lambda n: int(n.id),
                    )
                    figures.setdefault(f"today_read {gc_label}", []).append(spent / events)
                    spent = _reads(
                        lambda after: read_notifications(recorder, after, page_size),
                        lambda row: int(row[0]),
                    )
                    figures.setdefault(f"lean_read {gc_label}", []).append(spent / events)
                    pages_rows = []
                    after = 0
                    while rows := read_notifications(recorder, after, page_size):
                        pages_rows.append(rows)
                        after = int(rows[-1][0])
                    parts = _lean_parts(relay, topics, pages_rows)
                    for name, spent in zip(("encode", "messages", "batching"), parts, strict=True):
                        figures.setdefault(f"lean_{name} {gc_label}", []).append(spent / events)
        finally:
            gc.unfreeze()
            gc.set_threshold(*default_thresholds)
            app.close()
    best = {name: round(min(runs) * 1e6, 2) for name, runs in figures.items()}
    return {
        "interactions": interactions,
        "events": events,
        "rounds": rounds,
        "identical_messages": same,
        "us_per_event": best,
    }


def report(figures: dict[str, Any]) -> list[str]:
    """The figures as printed lines."""
    best = figures["us_per_event"]
    lines = [
        f"relay pages without Kafka: {figures['interactions']:,} interactions, "
        f"{figures['events']:,} lifecycle events, best of {figures['rounds']} rounds; "
        f"messages identical: {figures['identical_messages']}"
    ]
    for gc_label in ("gc tuned", "gc default"):
        today, lean = best[f"today {gc_label}"], best[f"lean {gc_label}"]
        today_read, lean_read = best[f"today_read {gc_label}"], best[f"lean_read {gc_label}"]
        lines.append(
            f"  {gc_label:10}  today {today:6.2f} µs CPU/event (read {today_read:.2f}, "
            f"map+encode {today - today_read:.2f})   lean {lean:6.2f} µs CPU/event "
            f"(read {lean_read:.2f}, map+encode {lean - lean_read:.2f})   "
            f"{today / lean:.1f}x"
        )
        lines.append(
            f"  {'':10}  lean apart: encode {best[f'lean_encode {gc_label}']:.2f}, messages "
            f"{best[f'lean_messages {gc_label}']:.2f}; batching for the producer (not in the "
            f"pages) {best[f'lean_batching {gc_label}']:.2f} µs CPU/event"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Print the figures (and return them)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--page-size", type=int, default=5000)
    args = parser.parse_args(argv)
    figures = relay_cpu_us(args.leads, args.rounds, args.page_size)
    for line in report(figures):
        print(line)
    return figures


if __name__ == "__main__":
    main()
