"""Batch replay on several cores: people spread over forked processes, their read models merged.

People are independent once their identities are known: nothing one person does changes another
person's lifecycle. So ``replay_sharded`` first reads the file once, decoding every line (the
invalid ones are rejected there, as ``replay_lines`` rejects them) and joining into one person
every lead id, anonymous id and interaction id that any line names together (union-find; an
interaction id sent for two people joins them, so a conflicting copy meets the lead that has
it). Each person goes to one of ``processes`` shards (by a CRC-32 of the key standing for the
person: the same for the same file), and each shard is replayed by ``replay_lines`` in a forked
child, its lines in file order (so a person's lines keep their order exactly), folding its own
read models. When it is done, the child sends its read models without their leads
(``Projections.without_leads``: the exact totals the documents are made of) and this process
merges them (``Projections.merge``); no lifecycle event crosses between processes, and this
process never holds a lead.

The document is the one ``replay_lines`` makes over the whole file, byte for byte: a person's
events all fold in one shard, the totals merged are exact sums, the interaction counts add up,
and the rejected lines are reported in line order (tested on a noisy simulated stream with
conflicting copies). What differs: the recorded times of the events, and an event the read
models' fold guard refuses is named by its shard and numbered by its place in that shard's fold.
The first pass holds every line in memory (as ``leadflow replay`` reads a file today).
"""

from __future__ import annotations

import multiprocessing
import pickle
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection, wait
from typing import Any

from contracts import (
    DEFAULT_MAX_BYTES,
    ContractError,
    Interaction,
    Problem,
    Rejection,
    Source,
    decode_interaction,
)
from leadflow.forked import failure, raise_failure
from leadflow.rejects import RejectLog
from leadflow.replay import (
    InteractionCounts,
    NumberedLine,
    Replay,
    finished,
    projections_for,
    replay_lines,
)
from lifecycle.ordering import DEFAULT_LATENESS, BusinessTimeOrder, ahead
from lifecycle.policy import Policy
from projections import ExchangeRates

__all__ = ["replay_sharded"]

_RESULT = b"R"
_FAILED = b"X"


class _People:
    """Union-find over the keys lines name together (``l:`` lead, ``a:`` anonymous id,
    ``i:`` interaction id)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        parent = self.parent
        root = parent.setdefault(key, key)
        while root != parent[root]:
            root = parent[root]
        while key != root:  # path compression
            parent[key], key = root, parent[key]
        return root

    def join(self, keys: Sequence[str]) -> None:
        roots = [self.find(k) for k in keys]
        first = min(roots)  # the smallest key stands for the person: independent of order
        for root in roots:
            self.parent[root] = first


def _keys(interaction: Interaction) -> list[str]:
    keys = [f"i:{interaction.id}"]
    if interaction.lead_id is not None:
        keys.append(f"l:{interaction.lead_id}")
    if interaction.anonymous_id is not None:
        keys.append(f"a:{interaction.anonymous_id}")
    return keys


def replay_sharded(
    lines: Iterable[NumberedLine],
    policy: Policy,
    *,
    processes: int,
    spend_lines: Iterable[bytes | NumberedLine] = (),
    env_of: Callable[[str], Mapping[str, str] | None] = lambda name: None,
    max_message_bytes: int = DEFAULT_MAX_BYTES,
    source_name: str = "-",
    spend_source_name: str | None = None,
    rejects: RejectLog | None = None,
    lateness: timedelta = DEFAULT_LATENESS,
    rates: ExchangeRates | None = None,
) -> Replay:
    """``replay_lines`` over numbered lines, its lifecycle spread over ``processes`` forked
    processes (see the module docstring); ``env_of("shard-K")`` is each shard's event-store
    environment (None: in memory). The result has no lifecycle application (``app`` None):
    there is one per shard, each gone with its process."""
    now = datetime.now(UTC)
    log = RejectLog() if rejects is None else rejects
    people = _People()
    valid: list[tuple[int, bytes, str]] = []  # line number, line, its first key
    rejected: list[tuple[int, bytes, ContractError, Rejection]] = []
    # Places over the whole file, as ``replay_lines`` would place them (only the late ones
    # differ from their business time): a shard sees only part of what came before.
    order: BusinessTimeOrder[str, None] = BusinessTimeOrder(lateness)
    order.assign([source_name])
    places: dict[int, datetime] = {}
    late = InteractionCounts()
    for number, raw in lines:
        try:
            interaction = decode_interaction(raw, max_message_bytes)
            ahead(interaction, now)
        except ContractError as error:
            source = Source(source_name, 0, number)
            rejected.append((number, raw, error, Rejection.invalid(raw, error, source, now)))
            continue
        keys = _keys(interaction)
        place, late_by = order.place(source_name, interaction.occurred_at)
        if late_by is not None:
            places[number] = place
            late.late_by(late_by)
        people.join(keys)
        valid.append((number, raw, keys[0]))
    shard_of = [zlib.crc32(people.find(key).encode()) % processes for _, _, key in valid]
    del people

    projections = projections_for(policy, rates=rates)
    unfoldable: list[Rejection] = []
    counts = InteractionCounts(
        rejected=len(rejected), late=late.late, late_seconds_max=late.late_seconds_max
    )
    children: dict[Connection, Any] = {}
    context = multiprocessing.get_context("fork")
    for shard in range(processes):
        receiving, sending = context.Pipe(duplex=False)

        def run(shard: int = shard, sending: Connection = sending) -> None:
            mine = [(n, raw) for (n, raw, _), s in zip(valid, shard_of, strict=True) if s == shard]
            _replay_shard(
                mine,
                policy,
                sending,
                places={n: places[n] for n, _ in mine if n in places},
                lateness=lateness,
                shard=shard,
                env=env_of(f"shard-{shard}"),
                max_message_bytes=max_message_bytes,
                source_name=source_name,
                rates=rates,
            )

        child = context.Process(target=run, name=f"replay-shard-{shard}", daemon=True)
        child.start()
        sending.close()
        children[receiving] = child
    try:
        while children:
            for ready in wait(list(children)):
                assert isinstance(ready, Connection)
                try:
                    message = ready.recv_bytes()
                except EOFError:
                    child = children.pop(ready)
                    child.join()
                    raise RuntimeError(
                        f"{child.name} ended without a result (exit code {child.exitcode})"
                    ) from None
                tag, body = message[:1], message[1:]
                children.pop(ready).join()
                if tag == _FAILED:
                    raise_failure(body, "a replay shard")
                shard_counts, conflicts, shard_read_models, refused = pickle.loads(body)
                projections.merge(shard_read_models)
                unfoldable += refused
                counts.merge(shard_counts)
                for number, raw, conflict in conflicts:
                    rejection = Rejection.conflict(
                        raw.encode("latin-1"),
                        reason=conflict["reason"],
                        source=Source(source_name, 0, number),
                        rejected_at=now,
                        interaction_id=conflict["interaction_id"],
                        lead_id=conflict["lead_id"],
                        recorded_lead_id=conflict["recorded_lead_id"],
                    )
                    problem = Problem("id", "an id not recorded for another lead", rejection.error)
                    rejected.append(
                        (number, raw.encode("latin-1"), ContractError([problem]), rejection)
                    )
    finally:
        for child in children.values():
            child.kill()
            child.join()
    rejected.sort(key=lambda r: r[0])
    for number, raw, why, _ in rejected:
        log.add("interactions", source_name, number, raw, why)
    return finished(
        Replay(
            None,
            projections,
            counts,
            [r[3] for r in rejected],
            unfoldable=unfoldable,
            rejects=log,
        ),
        spend_lines,
        max_message_bytes,
        spend_source_name or f"{source_name}:spend",
        now,
    )


def _replay_shard(
    lines: list[NumberedLine],
    policy: Policy,
    sending: Connection,
    *,
    places: Mapping[int, datetime],
    lateness: timedelta,
    shard: int,
    env: Mapping[str, str] | None,
    max_message_bytes: int,
    source_name: str,
    rates: ExchangeRates | None,
) -> None:
    """In the child: replay the shard's lines and fold its read models, then send its counts,
    conflicting copies, read models without their leads (``Projections.without_leads``) and
    refused events (or its failure, ``leadflow.forked``)."""
    try:
        replay = replay_lines(
            lines,
            policy,
            env=env,
            max_message_bytes=max_message_bytes,
            source_name=f"{source_name} (shard {shard})",
            lateness=lateness,
            places=places,
            rates=rates,
        )
        line_of = dict(lines)
        conflicts = [
            (
                r.source.offset if r.source is not None else 0,
                # The line as read (a rejection may keep only its first bytes), any bytes.
                line_of[r.source.offset if r.source is not None else 0].decode("latin-1"),
                {
                    "reason": r.error,
                    "interaction_id": r.interaction_id,
                    "lead_id": r.lead_id,
                    "recorded_lead_id": r.recorded_lead_id,
                },
            )
            for r in replay.rejections
        ]
        # Its lines were all valid: its rejected count is its conflicting copies.
        result = (
            replay.counts.as_dict(),
            conflicts,
            replay.projections.without_leads(),
            replay.unfoldable,
        )
        sending.send_bytes(_RESULT + pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    except BaseException as exc:
        sending.send_bytes(_FAILED + failure(exc))
    finally:
        sending.close()
