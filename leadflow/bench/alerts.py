"""SLA deadlines firing on time at scale, on the real broker (``leadflow bench --only
sla-deadlines --leads 10000``, or ``python -m leadflow.bench.alerts``).

``--deadlines`` leads (``--leads`` when run from ``leadflow bench``) enter mql on topics of their
own: one ``stage_changed`` lifecycle event each is published to lead-events, with business times
chosen so that every deadline is still open when the last event is on the topic (all of them
pending at once) and the alerts fall due spread over ``--window`` seconds. ``leadflow alerts``
runs in a process of its own over a policy whose MQL SLA is ``--sla`` seconds (warning at 75 %),
so each lead makes a warning and a breach: twice as many alerts as deadlines, all due while
``--deadlines`` deadlines are pending or being fired.

Figures, over every alert:

- ``published``: ``fired_at`` (the keeper's wall clock when it sent the alert) less ``due_at``;
- ``received``: when this process read the alert back from the alerts topic less ``due_at``:
  the lateness a subscriber sees, with the broker's round trip in it;
- the baseline, in the same run: a raw aiokafka produce -> consume round trip of messages of
  the same size on the same broker, one every 10 ms (what any message pays, alert or not).

p50, p99 and max of each, in seconds; the target is p99 of ``received`` within 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from contracts import (
    LifecycleEvent,
    LifecycleEventType,
    PolicyRef,
    Stage,
    Topics,
    decode_alert,
    encode,
    lead_key,
)
from contracts.lifecycle_events import StageChanged
from leadflow import wiring
from leadflow.settings import Settings
from streams.connection import KafkaConnection, ensure_topics

__all__ = ["main"]


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan"), "count": 0}

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {
        "p50": round(at(0.50), 4),
        "p99": round(at(0.99), 4),
        "max": round(ordered[-1], 4),
        "count": len(ordered),
    }


async def _baseline(connection: KafkaConnection, topic: str, count: int) -> dict[str, float]:
    """Produce -> consume round trips of ~500-byte messages on ``topic``."""
    consumer = connection.consumer(topic, group_id=None, auto_offset_reset="latest")
    producer = connection.producer(linger_ms=0)
    await consumer.start()
    await producer.start()
    trips: list[float] = []
    try:
        await asyncio.sleep(1.0)  # the consumer's assignment and position
        sent: dict[bytes, float] = {}

        async def send() -> None:
            for n in range(count):
                key = str(n).encode()
                sent[key] = time.time()
                await producer.send(topic, b"x" * 500, key=key)
                await asyncio.sleep(0.01)

        sender = asyncio.create_task(send())
        while len(trips) < count:
            batches = await consumer.getmany(timeout_ms=1000)
            now = time.time()
            for records in batches.values():
                for record in records:
                    trips.append(now - sent[record.key])
            if not batches and sender.done():
                break
        await sender
    finally:
        await producer.stop()
        await consumer.stop()
    return _percentiles(trips)


def _policy(directory: Path, sla_seconds: float) -> Path:
    text = (resources.files("lifecycle") / "presets" / "b2b_saas.toml").read_text()
    path = directory / "bench_sla.toml"
    path.write_text(
        text.replace("mql_first_touch_hours = 4.0", f"mql_first_touch_hours = {sla_seconds / 3600}")
    )
    return path


def _entries(count: int, first_due: datetime, window: float, sla: float) -> list[LifecycleEvent]:
    """``count`` leads entering mql, their warnings due from ``first_due`` over ``window``
    seconds (their breaches ``sla`` / 4 seconds after each)."""
    events = []
    for n in range(count):
        warn_at = first_due + timedelta(seconds=window * n / max(1, count - 1))
        entered = warn_at - timedelta(seconds=sla * 0.75)
        events.append(
            LifecycleEvent(
                event_id=f"bench-{n}-1",
                lead_id=f"bench-lead-{n:06d}",
                sequence=1,
                type=LifecycleEventType.STAGE_CHANGED,
                version=1,
                occurred_at=entered,
                recorded_at=entered,
                policy=PolicyRef(name="b2b_saas", version="1.0"),
                data=StageChanged(
                    from_stage=None, to_stage=Stage.MQL, rule="high_intent", reason="bench"
                ),
            )
        )
    return events


async def measure(deadlines: int, window: float, sla: float, lead_in: float) -> dict[str, Any]:
    """Run the keeper over ``deadlines`` pending deadlines; the figures."""
    base = Settings()
    prefix = f"bench-alerts-{uuid.uuid4().hex[:8]}."
    settings = base.model_copy(update={"topic_prefix": prefix, "alerts_http_port": 0})
    connection = wiring.kafka_connection(settings)
    topics = Topics(prefix)
    baseline_topic = prefix + "baseline"
    await ensure_topics(connection, (*topics.all(), baseline_topic), settings.topic_partitions)
    baseline = await _baseline(connection, baseline_topic, 300)

    work = settings.data_dir / "bench-alerts"
    work.mkdir(parents=True, exist_ok=True)
    policy = _policy(work, sla)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")},
        "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "LEADFLOW_TOPIC_PREFIX": prefix,
        "LEADFLOW_POLICY": str(policy),
        "LEADFLOW_ALERTS_HTTP_PORT": "0",
        "LEADFLOW_DATA_DIR": str(settings.data_dir),
    }
    log = (work / "keeper.log").open("ab")
    keeper = subprocess.Popen(
        [sys.executable, "-m", "leadflow", "alerts"], env=env, stdout=log, stderr=log
    )
    consumer = connection.consumer(topics.alerts, group_id=None, auto_offset_reset="earliest")
    producer = connection.producer()
    received: list[float] = []
    published: list[float] = []
    try:
        await consumer.start()
        await producer.start()
        first_due = datetime.now(UTC) + timedelta(seconds=lead_in)
        events = _entries(deadlines, first_due, window, sla)
        started = time.time()
        for event in events:
            await producer.send(topics.lead_events, encode(event), key=lead_key(event.lead_id))
        await producer.flush()
        loaded = time.time()
        if loaded >= first_due.timestamp():
            raise RuntimeError(
                f"publishing {deadlines:,} entries took {loaded - started:.1f} s, past the "
                f"first deadline: raise --lead-in"
            )
        expected = 2 * deadlines
        give_up = first_due.timestamp() + window + sla + 60
        while len(received) < expected and time.time() < give_up:
            if keeper.poll() is not None:
                raise RuntimeError(f"leadflow alerts exited; see {work / 'keeper.log'}")
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            now = time.time()
            for records in batches.values():
                for record in records:
                    alert = decode_alert(record.value)
                    due = alert.due_at.timestamp()
                    received.append(now - due)
                    if alert.fired_at is not None:
                        published.append(alert.fired_at.timestamp() - due)
    finally:
        keeper.terminate()
        keeper.wait(30)
        await consumer.stop()
        await producer.stop()
        log.close()
    return {
        "workload": {
            "deadlines_pending": deadlines,
            "alerts_expected": 2 * deadlines,
            "alerts_received": len(received),
            "window_seconds": window,
            "sla_seconds": sla,
            "publish_entries_seconds": round(loaded - started, 2),
            "seconds_to_spare_before_first_due": round(first_due.timestamp() - loaded, 2),
            "partitions": settings.topic_partitions,
        },
        "published_lateness_s": _percentiles(published),
        "received_lateness_s": _percentiles(received),
        "baseline_round_trip_s": baseline,
        "target": "p99 of received lateness within 2 s",
        "met": bool(received)
        and len(received) == 2 * deadlines
        and _percentiles(received)["p99"] <= 2.0,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure and print the figures (one JSON document); returns it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--deadlines", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=20.0, help="seconds the alerts spread")
    parser.add_argument("--sla", type=float, default=60.0, help="the MQL SLA in seconds")
    parser.add_argument(
        "--lead-in", type=float, default=20.0, help="seconds from start to the first alert"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    document = asyncio.run(measure(args.deadlines, args.window, args.sla, args.lead_in))
    text = json.dumps(document, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return document


if __name__ == "__main__":
    main()
