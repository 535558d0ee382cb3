"""Interactions a second through ``POST /interactions`` in batches, on the real broker, beside
the raw aiokafka produce rate of the same lines in the same run (``leadflow bench --only
ingest-http``, or ``python -m leadflow.bench.ingest``).

The simulator's interactions of ``--leads`` leads (seed 3, no noise) are sent, in ``--rounds``
interleaved rounds, two ways to topics of their own (4 partitions) on the configured broker (the
local one, started if needed):

- ``raw aiokafka``: one producer in this process (``KafkaConnection.producer``: idempotent,
  acks=all) sends every line keyed as ``leadflow publish`` keys it, one ``send`` each, and
  waits for every acknowledgement: the ceiling of a Python producer on this machine;
- ``HTTP``: the HTTP API in a process of its own (``--serve``: ``start_http`` with ``Ingest``
  alone, no projector, no tokens, a rate limit too high to bite) takes the same lines as JSON
  lines, ``--batch`` a request, from ``--concurrency`` connections of an aiohttp client in
  this process; each line is judged, keyed and published, and every answer must be 202 with
  every line accepted.

Figures per way: interactions a second (wall, from the first send to the last
acknowledgement or answer; the best round), the ratio of HTTP to raw, and CPU µs per
interaction of the server process, of this process (the client; for raw, the producer itself)
and of the local broker when its process is known. The topics must hold every line sent.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["main"]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Figure:
    """One way's best round: what was sent, how fast, what CPU it took per interaction."""

    way: str
    interactions: int
    seconds: float
    rate: float
    server_cpu_us: float | None
    client_cpu_us: float
    broker_cpu_us: float | None


def _cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _per_item_us(before: float | None, after: float | None, items: int) -> float | None:
    if before is None or after is None:
        return None
    return round((after - before) / items * 1e6, 2)


async def _raw(connection: Any, topic: str, lines: Sequence[bytes], broker: int | None) -> Figure:
    from streams.publishing import key_of  # noqa: PLC0415

    producer = connection.producer(linger_ms=0)
    await producer.start()
    try:
        keys = [key_of(line) for line in lines]  # the HTTP side keys from its decode: not timed
        cpu, broker_cpu = time.process_time(), _cpu_seconds(broker)
        started = time.perf_counter()
        deliveries = [
            await producer.send(topic, line, key=key) for line, key in zip(lines, keys, strict=True)
        ]
        await asyncio.gather(*deliveries)
        seconds = time.perf_counter() - started
        client = time.process_time() - cpu
        broker_after = _cpu_seconds(broker)
    finally:
        await producer.stop()
    n = len(lines)
    return Figure(
        "raw aiokafka (send per message)",
        n,
        round(seconds, 3),
        round(n / seconds),
        None,
        round(client / n * 1e6, 2),
        _per_item_us(broker_cpu, broker_after, n),
    )


async def _http(
    url: str,
    server: int,
    batches: Sequence[bytes],
    sizes: Sequence[int],
    *,
    concurrency: int,
    broker: int | None,
) -> Figure:
    import aiohttp  # noqa: PLC0415

    headers = {"Content-Type": "application/x-ndjson"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        next_batch = 0

        async def post_batches() -> None:
            nonlocal next_batch
            while next_batch < len(batches):
                index = next_batch
                next_batch += 1
                async with http.post(url, data=batches[index], headers=headers) as response:
                    answer = json.loads(await response.read())
                    if response.status != 202 or answer["accepted"] != sizes[index]:
                        raise RuntimeError(f"batch {index}: {response.status} {answer}")

        cpu, server_cpu, broker_cpu = (
            time.process_time(),
            _cpu_seconds(server),
            _cpu_seconds(broker),
        )
        started = time.perf_counter()
        await asyncio.gather(*(post_batches() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        client = time.process_time() - cpu
        server_after, broker_after = _cpu_seconds(server), _cpu_seconds(broker)
    n = sum(sizes)
    return Figure(
        f"POST /interactions, {max(sizes)} a batch, {concurrency} connections",
        n,
        round(seconds, 3),
        round(n / seconds),
        _per_item_us(server_cpu, server_after, n),
        round(client / n * 1e6, 2),
        _per_item_us(broker_cpu, broker_after, n),
    )


def _serve(topic: str, batch: int) -> None:
    """The HTTP API with ``Ingest`` alone on a free loopback port; prints the port, serves until
    its stdin closes."""
    from leadflow import wiring  # noqa: PLC0415
    from leadflow.settings import Settings  # noqa: PLC0415
    from streams.http_api import Ingest, IngestLimits, bound_port, start_http  # noqa: PLC0415
    from streams.projector import ProjectionState  # noqa: PLC0415

    settings = Settings()

    async def serve() -> None:
        state = ProjectionState()
        state.targets = {}  # no fold behind it: live at once
        # The rate limit must not be what is measured: far above anything this machine does.
        limits = IngestLimits(max_lines=batch, rate=1e9, burst=10**9)
        ingest = Ingest(wiring.kafka_connection(settings), topic, limits=limits)
        runner = await start_http(
            state, "127.0.0.1", 0, ingest=ingest, max_body_bytes=settings.max_message_bytes
        )
        print(bound_port(runner), flush=True)
        try:
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        finally:
            await runner.cleanup()

    asyncio.run(serve())


async def measure(
    leads: int, batch: int, concurrency: int, rounds: int
) -> tuple[list[Figure], dict[str, Any]]:
    """Every figure of the module docstring: the best round of each way, and the workload."""
    from leadflow import wiring  # noqa: PLC0415
    from leadflow.services import LocalKafka  # noqa: PLC0415
    from leadflow.settings import Settings  # noqa: PLC0415
    from leadflow.simulator import SimulationConfig, simulate  # noqa: PLC0415
    from streams.connection import ensure_topics  # noqa: PLC0415
    from streams.progress import end_offsets  # noqa: PLC0415

    settings = Settings()
    broker: int | None = None
    if settings.uses_local_broker:
        kafka = LocalKafka(settings)
        await asyncio.to_thread(kafka.start)
        broker = (await asyncio.to_thread(kafka.status)).pid
    connection = wiring.kafka_connection(settings)
    lines = list(simulate(SimulationConfig(leads=leads, seed=3, noise=0.0)).lines())
    batches = [b"\n".join(lines[i : i + batch]) for i in range(0, len(lines), batch)]
    sizes = [len(lines[i : i + batch]) for i in range(0, len(lines), batch)]
    prefix = f"bench-ingest-{uuid.uuid4().hex[:8]}."
    raw_topics = [f"{prefix}raw-{r}" for r in range(rounds)]
    http_topics = [f"{prefix}http-{r}" for r in range(rounds)]
    await ensure_topics(connection, (*raw_topics, *http_topics), 4)

    raws: list[Figure] = []
    https: list[Figure] = []
    for r in range(rounds):
        raws.append(await _raw(connection, raw_topics[r], lines, broker))
        command = [sys.executable, "-m", "leadflow.bench.ingest", "--serve", http_topics[r]]
        server = subprocess.Popen(
            [*command, "--batch", str(batch)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            url = f"http://127.0.0.1:{port}/interactions"
            # One warm-up batch (the server's producer starts, metadata), not timed.
            await _http(url, server.pid, batches[:1], sizes[:1], concurrency=1, broker=None)
            https.append(
                await _http(url, server.pid, batches, sizes, concurrency=concurrency, broker=broker)
            )
        finally:
            if server.stdin is not None:
                server.stdin.close()
            server.wait(60)
    for topic, expected in [(t, len(lines)) for t in raw_topics] + [
        (t, len(lines) + sizes[0]) for t in http_topics
    ]:
        held = sum((await end_offsets(connection, topic)).values())
        if held != expected:
            raise RuntimeError(f"{topic} holds {held} messages, {expected} were sent")
    workload = {
        "leads": leads,
        "interactions": len(lines),
        "bytes_per_interaction": round(sum(map(len, lines)) / len(lines)),
        "batch": batch,
        "concurrency": concurrency,
        "rounds": rounds,
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    best = [max(raws, key=lambda f: f.rate), max(https, key=lambda f: f.rate)]
    return best, workload


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure and print the figures (one JSON document); returns it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=1_000, help="interactions a request")
    parser.add_argument("--concurrency", type=int, default=4, help="connections posting at once")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best")
    parser.add_argument("--serve", metavar="TOPIC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.serve, args.batch)
        return {}
    figures, workload = asyncio.run(measure(args.leads, args.batch, args.concurrency, args.rounds))
    raw, http = figures
    document = {
        "workload": workload,
        "figures": [asdict(f) for f in figures],
        "http_to_raw": round(http.rate / raw.rate, 3),
    }
    print(json.dumps(document, indent=2))
    return document


if __name__ == "__main__":
    main()
