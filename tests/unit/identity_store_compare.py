"""Hash what a checkout stores for streams heavy in identity traffic, so that two checkouts can
be compared (written for moving identity resolution into ``lifecycle.identity``).

Run as a script with ``PYTHONPATH`` set to the checkout to measure, once per checkout, and
compare the outputs (``diff``)::

    PYTHONPATH=/path/to/checkout python tests/unit/identity_store_compare.py [SCENARIO ...]

Scenarios (all by default): ``demo`` (the demo's stream: 5,000 leads, seed 7, noise 0.01),
``noisy`` (2,000 leads, noise 0.1), ``tricky`` and ``tricky-small-batches`` (the simulator's
stream plus hostile identity traffic, see ``tricky_lines``; in business-time order, then in
file order in batches of 7), ``pre-index`` (a store made before the interaction-id index, fed
its stream again reversed). Each is replayed (``replay_lines``) into a SQLite store under
``stored_events_dump``'s deterministic clock and randomness, restarted for each scenario; the
script prints the hash of every ``process()`` outcome, of the replay document, of every stored
event (topic and state bytes, notification order), of the same with recorded times and chain
values removed, and of every snapshot. It uses only what every version of the lifecycle offers
(``replay_lines``, ``LeadLifecycle.process``, ``notification_pages``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import sqlite3
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from tests.unit.stored_events_dump import MASTER_KEY, _deterministic

OUTCOMES: list[str] = []
"""Every outcome ``process()`` returned (or the error it raised) in this scenario."""


def _record_outcomes() -> None:
    """Wrap ``LeadLifecycle.process`` so that every outcome is kept in ``OUTCOMES``."""
    from lifecycle.application import LeadLifecycle  # noqa: PLC0415

    process = LeadLifecycle.process

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            outcomes = process(self, *args, **kwargs)
        except Exception as error:
            OUTCOMES.append(f"RAISED {type(error).__name__}: {error}")
            raise
        OUTCOMES.extend(
            f"{o.interaction_id}|{o.lead_id}|{o.status}|{o.reason}|{o.stage}|"
            f"{o.conflicting_lead_id}"
            for o in outcomes
        )
        return outcomes

    LeadLifecycle.process = recording  # type: ignore[method-assign]  # measured, not changed


def sim_lines(leads: int, seed: int, noise: float) -> list[bytes]:
    """The simulator's stream (noise included)."""
    from leadflow.simulator import SimulationConfig, simulate  # noqa: PLC0415

    return list(simulate(SimulationConfig(leads=leads, seed=seed, noise=noise)).lines())


Mutation = Callable[[Any, str, Any, random.Random], list[Any]]


def _mutations(valid: Sequence[Any]) -> list[Mutation]:
    """The kinds of hostile identity traffic ``tricky_lines`` draws from: each takes an
    interaction of the stream, a new id, a later time and the generator, and gives the
    interactions to add."""
    from contracts.vocabulary import InteractionType  # noqa: PLC0415

    lead_ids = sorted({i.lead_id for i in valid if i.lead_id})
    anon_ids = sorted({i.anonymous_id for i in valid if i.anonymous_id})
    deals = [i for i in valid if i.type is InteractionType.DEAL_WON]
    forms = [i for i in valid if i.type is InteractionType.FORM_SUBMITTED]
    new = dataclasses.replace

    def refused_new_lead_with_new_anonymous_id(s: Any, k: str, at: Any, r: Any) -> list[Any]:
        deal = r.choice(deals)
        first = new(deal, id=k, lead_id=f"new-{k}", anonymous_id=f"anon-{k}", occurred_at=at)
        later = new(s, id=f"{k}-a", lead_id=None, anonymous_id=f"anon-{k}")
        return [first, new(later, occurred_at=at + timedelta(minutes=5))]

    return [
        # an exact copy
        lambda s, k, at, r: [s],
        # the same id for another lead
        lambda s, k, at, r: [new(s, lead_id=r.choice(lead_ids))],
        # the same id for another anonymous id only
        lambda s, k, at, r: [new(s, lead_id=None, anonymous_id=r.choice(anon_ids))],
        # the same id moved to its visitor (or any visitor)
        lambda s, k, at, r: [
            new(s, lead_id=None, anonymous_id=s.anonymous_id or r.choice(anon_ids))
        ],
        # the same id naming a lead with the same anonymous id
        lambda s, k, at, r: [
            new(s, lead_id=r.choice(lead_ids), anonymous_id=s.anonymous_id or r.choice(anon_ids))
        ],
        # a new form claiming a known anonymous id for a (perhaps other) lead
        lambda s, k, at, r: [
            new(
                r.choice(forms),
                id=k,
                lead_id=r.choice(lead_ids),
                anonymous_id=r.choice(anon_ids),
                occurred_at=at,
            )
        ],
        # a new anonymous-only touch of a known anonymous id
        lambda s, k, at, r: [
            new(s, id=k, lead_id=None, anonymous_id=r.choice(anon_ids), occurred_at=at)
        ],
        refused_new_lead_with_new_anonymous_id,
        # a new lead whose first interaction is refused, with a known anonymous id
        lambda s, k, at, r: [
            new(
                r.choice(deals),
                id=k,
                lead_id=f"new-{k}",
                anonymous_id=r.choice(anon_ids),
                occurred_at=at,
            )
        ],
        # a known lead, a new id, an anonymous id never seen
        lambda s, k, at, r: [
            new(s, id=k, lead_id=r.choice(lead_ids), anonymous_id=f"fresh-{k}", occurred_at=at)
        ],
        # a copy without its anonymous id
        lambda s, k, at, r: [new(s, anonymous_id=None) if s.lead_id else s],
        # a copy naming a new lead with the original's anonymous id
        lambda s, k, at, r: [new(s, lead_id=f"other-{k}")],
    ]


def tricky_lines(leads: int, seed: int, mutations: int) -> list[bytes]:
    """The simulator's stream (noise 0.02) plus ``mutations`` draws of hostile identity traffic
    (``_mutations``), each put at a random place in the file."""
    from contracts import ContractError, decode_interaction  # noqa: PLC0415
    from contracts.codec import encode  # noqa: PLC0415

    lines = sim_lines(leads, seed, 0.02)
    valid = []
    for raw in lines:
        try:
            valid.append(decode_interaction(raw))
        except ContractError:
            continue
    kinds = _mutations(valid)
    rng = random.Random(f"identity-{seed}")
    for k in range(mutations):
        kind = kinds[rng.randrange(len(kinds))]
        source = rng.choice(valid)
        at = source.occurred_at + timedelta(hours=rng.randrange(0, 24 * 30))
        for added in kind(source, f"mut-{seed}-{k}", at, rng):
            lines.insert(rng.randrange(0, len(lines) + 1), encode(added))
    return lines


def digest(items: Iterable[bytes | str]) -> str:
    """How many items, and the first 16 hex digits of the SHA-256 of them, one a line."""
    hashed = hashlib.sha256()
    count = 0
    for item in items:
        hashed.update(item if isinstance(item, bytes) else item.encode())
        hashed.update(b"\n")
        count += 1
    return f"{count} {hashed.hexdigest()[:16]}"


def without_times(state: bytes) -> bytes:
    """A stored state (JSON) without its recorded time and chain values."""
    obj = orjson.loads(state)
    for key in ("recorded_at", "timestamp", "chain", "previous_chain"):
        obj.pop(key, None)
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def run(
    name: str, lines: list[bytes], *, batch: int, ordered: bool, pre_index: bool = False
) -> None:
    """Replay ``lines`` into a new SQLite store and print the hashes (module docstring)."""
    from leadflow.replay import replay_lines  # noqa: PLC0415
    from lifecycle.interaction_ids import INDEX_TABLE  # noqa: PLC0415
    from lifecycle.policy import load_policy  # noqa: PLC0415

    OUTCOMES.clear()
    _deterministic()  # each scenario from the same clock reading and random state
    with tempfile.TemporaryDirectory(prefix="identity-compare-") as tmp:
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(Path(tmp) / "events.sqlite"),
            "PERSONAL_DATA_MASTER_KEY": MASTER_KEY,
        }
        policy = load_policy("b2b_saas")
        if pre_index:
            first = replay_lines(lines, policy, env=env, batch=batch, lateness=None)
            if first.app is not None:
                first.app.close()
            with sqlite3.connect(env["SQLITE_DBNAME"]) as connection:
                connection.execute(f"DROP TABLE {INDEX_TABLE}")
            connection.close()
            lines = list(reversed(lines))
        order: dict[str, Any] = {} if ordered else {"lateness": None}
        error = "none"
        try:
            replay = replay_lines(lines, policy, env=env, batch=batch, **order)
        except Exception:
            error = traceback.format_exc().splitlines()[-1]
            raise
        app = replay.app
        if app is None:
            raise RuntimeError("the replay kept no lifecycle application")
        events: list[tuple[str, bytes]] = []
        streams: dict[Any, None] = {}
        for page in app.notification_pages():
            for n in page:
                streams.setdefault(n.originator_id, None)
                events.append((n.topic, bytes(n.state)))
        snapshots: list[bytes] = []
        if app.snapshots is not None:
            for stream in streams:
                for s in app.snapshots.recorder.select_events(stream):
                    snapshots.append(s.topic.encode() + b" " + bytes(s.state))
        statuses: dict[str, int] = {}
        for o in OUTCOMES:
            status = o.split("|")[2] if "|" in o else o
            statuses[status] = statuses.get(status, 0) + 1
        document = orjson.dumps(replay.document(), option=orjson.OPT_SORT_KEYS)
        print(f"[{name}] lines={len(lines)} batch={batch} ordered={ordered} error={error}")
        print(f"  outcomes   {digest(OUTCOMES)}  {dict(sorted(statuses.items()))}")
        print(f"  document   {digest([document])}")
        print(f"  events     {digest(t.encode() + b' ' + s for t, s in events)}")
        times = digest(t.encode() + b" " + without_times(s) for t, s in events)
        print(f"  events-t   {times}  (recorded times, chains removed)")
        print(f"  snapshots  {digest(snapshots)}")
        app.close()


SCENARIOS: dict[str, Callable[[], None]] = {
    "demo": lambda: run(
        "demo 5000 leads seed 7 noise 0.01", sim_lines(5000, 7, 0.01), batch=1000, ordered=True
    ),
    "noisy": lambda: run(
        "2000 leads seed 11 noise 0.1", sim_lines(2000, 11, 0.1), batch=1000, ordered=True
    ),
    "tricky": lambda: run(
        "tricky 400 leads seed 5 +3000 mutations",
        tricky_lines(400, 5, 3000),
        batch=1000,
        ordered=True,
    ),
    "tricky-small-batches": lambda: run(
        "tricky 300 leads seed 9 +2500 mutations, file order",
        tricky_lines(300, 9, 2500),
        batch=7,
        ordered=False,
    ),
    "pre-index": lambda: run(
        "pre-index store: tricky 200 leads seed 13 +1500 mutations, then again reversed",
        tricky_lines(200, 13, 1500),
        batch=13,
        ordered=False,
        pre_index=True,
    ),
}


if __name__ == "__main__":
    _deterministic()
    _record_outcomes()
    for scenario in sys.argv[1:] or list(SCENARIOS):
        SCENARIOS[scenario]()
