"""The lifecycle application: the only way into the Lead aggregates.

``LeadLifecycle`` is an eventsourcing ``Application`` whose recorder is a ``ProcessRecorder``:
``process()`` writes a batch's events and the consumed position (an eventsourcing ``Tracking``
record) in one transaction, so a crash never loses or doubles an effect. Persistence is
eventsourcing's own, chosen by ``env``: POPO (in memory, the default),
``{"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}``, or
``eventsourcing.postgres`` with its ``POSTGRES_*`` variables.

Events leave through the notification log: ``notification_pages`` reads it a page at a time (every
reader of the whole log goes through it, save the relay, which sends the stored bytes without
decoding them: ``lifecycle.adapters.notifications``), ``lifecycle_events`` maps it to the
wire (``to_lifecycle_event``).

Where an interaction lands (its lead, its visitor, the lead that visitor was merged into; a new
lead or visitor; a visitor linked) is decided by the domain, ``lifecycle.identity``, which reads
and begins streams through the batch's leads (``_BatchLeads``); the application records the
interaction on the lead it lands on.

Interaction ids are unique across the store (``lifecycle.interaction_ids``): the recorder keeps
an index of every id recorded, written in the transaction of the events and the tracking
record. A copy of an id recorded for the same lead is a ``DUPLICATE``; a copy naming another
lead (or another anonymous id) is a ``CONFLICT``, changes nothing, and says which lead has it.

Personal data: each interaction is kept whole in its stream, its personal values sealed with the
stream's key through ``personal_data`` (``lifecycle.personal``: the key table beside the events,
the master key from the environment's ``PERSONAL_DATA_MASTER_KEY``); ``forget`` destroys a
lead's keys and records ``PersonalDataErased``. No wire event carries a personal value.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    Mapper,
    MapperDeserialisationError,
    Notification,
    PersistenceError,
    ProcessRecorder,
    Recording,
    StoredEvent,
    Tracking,
    Transcoding,
)
from eventsourcing.utils import get_topic, resolve_topic

from contracts import lifecycle_events as wire
from contracts.codec import split_personal
from contracts.interactions import PERSONAL_FIELDS, Interaction
from contracts.lifecycle_events import (
    LIFECYCLE_TYPE_OF,
    LIFECYCLE_VERSIONS,
    LifecycleData,
    LifecycleEvent,
    PolicyRef,
    Touch,
)
from contracts.types import ANONYMOUS_PREFIX
from contracts.vocabulary import (
    CHANNEL_BY_VALUE,
    FORM_KIND_BY_VALUE,
    INTERACTION_TYPE_BY_VALUE,
    STAGE_BY_VALUE,
    TEMPERATURE_BY_VALUE,
    Channel,
    InteractionType,
    Stage,
    Temperature,
)
from lifecycle.adapters.key_stores import vault_for
from lifecycle.adapters.stream_reads import latest_snapshots, select_streams
from lifecycle.encoding import (
    STATE,
    decode_attributes,
    encode_event,
    is_encoded,
    lifecycle_event_id,
)
from lifecycle.errors import LeadNotFoundError
from lifecycle.identity import Conflict, named_lead, resolve, unlinked_visitor
from lifecycle.interaction_ids import (
    INTERACTION_IDS,
    MORE_POSITIONS,
    IndexedPOPOProcessRecorder,
    InteractionIndex,
    recorder_topic,
)
from lifecycle.lead import InteractionRecord, Lead, OutcomeStatus, visitor_key
from lifecycle.personal import ERASED, MASTER_KEY, PersonalData
from lifecycle.policy import Policy
from lifecycle.scoring import temperature
from lifecycle.transcoding import DatetimeAsISOFast, OrjsonTranscoder

__all__ = [
    "NOTIFICATION_PAGE",
    "Erasure",
    "LeadLifecycle",
    "LeadMapper",
    "LeadView",
    "Outcome",
    "OutcomeStatus",
    "Position",
    "StoreConflictError",
    "StoreError",
    "stored_state",
    "to_lifecycle_event",
]

DEFAULT_CACHE_SIZE = 50_000
"""How many leads ``process()`` keeps in memory between batches by default."""

Position = Tracking
"""A consumed position, recorded in the transaction of what it produced: the upstream's name
(``application_name``) and its offset there (``notification_id``); eventsourcing's ``Tracking``,
named here so that callers of the application need no import of the library."""

StoreConflictError = IntegrityError
"""The store refused a write that conflicts with one already made: the same position, or the
same version of a stream, written by another process first."""

StoreError = PersistenceError
"""The store failed (eventsourcing's root of persistence errors; ``StoreConflictError`` is one)."""

NOTIFICATION_PAGE = 1000
"""How many rows of the notification log ``notification_pages`` reads at a time."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What ``process()`` made of one interaction.

    ``lead_id`` is the key of the stream it was recorded on (``anon:<id>`` for a visitor),
    ``stage`` that lead's stage right after it, ``reason`` why it was refused or conflicts
    (else None). For a ``CONFLICT`` (the id is recorded for another lead), ``lead_id`` and
    ``stage`` are those of the lead that has the id, and ``conflicting_lead_id`` is the lead
    this copy named (its ``lead_id``, else ``anon:<anonymous_id>``); None otherwise.
    """

    interaction_id: str
    lead_id: str
    status: OutcomeStatus
    reason: str | None
    stage: Stage
    conflicting_lead_id: str | None = None


@dataclass(frozen=True, slots=True)
class LeadView:
    """A lead as it stands: stage, score (as of its last scored interaction) and dates."""

    lead_id: str
    stage: Stage
    score: float
    fit: float
    engagement: float
    engagement_as_of: datetime | None
    temperature: Temperature
    stage_entered: Mapping[Stage, datetime]
    touches: int
    interactions: int
    policy: PolicyRef
    anonymous: bool
    merged_into: str | None
    linked_anonymous_ids: tuple[str, ...]
    first_occurred_at: datetime
    last_occurred_at: datetime
    first_sales_touch_at: datetime | None
    first_touch_due_at: datetime | None
    """When sales must touch the lead by (policy SLA), while a lead or MQL awaits its touch."""


@dataclass(frozen=True, slots=True)
class Erasure:
    """What ``forget`` did: the streams erased (the lead's, then its merged visitors'), those
    whose key it destroyed now, and those it recorded ``PersonalDataErased`` on (none when
    they had been erased already and nothing was left to destroy)."""

    lead_id: str
    streams: tuple[str, ...]
    destroyed: tuple[str, ...]
    recorded: tuple[str, ...]

    @property
    def already_erased(self) -> bool:
        """True when there was nothing left to erase (forgetting twice is harmless)."""
        return not self.destroyed and not self.recorded


class SetAsSortedList(Transcoding):
    """Sets (a lead's interaction ids) as sorted JSON lists, so snapshots are deterministic."""

    type = set
    name = "set"

    def encode(self, obj: set[Any]) -> list[Any]:
        return sorted(obj)

    def decode(self, data: list[Any]) -> set[Any]:
        return set(data)


class TouchAsDict(Transcoding):
    """``contracts.Touch`` values (a visitor's touches, in events and snapshots)."""

    type = Touch
    name = "touch"

    def encode(self, obj: Touch) -> dict[str, Any]:
        return {
            "interaction_id": obj.interaction_id,
            "interaction_type": obj.interaction_type.value,
            "occurred_at": obj.occurred_at,
            "channel": obj.channel.value,
            "campaign": obj.campaign,
        }

    def decode(self, data: dict[str, Any]) -> Touch:
        return Touch(
            interaction_id=data["interaction_id"],
            interaction_type=InteractionType(data["interaction_type"]),
            occurred_at=data["occurred_at"],
            channel=Channel(data["channel"]),
            campaign=data["campaign"],
        )


class LeadLifecycle(Application[UUID]):
    """Drives Lead aggregates from interactions under one policy.

    Each ``process()`` batch reads every stream it touches in one query (``_prefetch``,
    through ``lifecycle.adapters.stream_reads``) rather than with a ``Repository.get`` each: the
    streams not in memory whole (after their last snapshot), and for the leads that are, only
    their events beyond the version in memory. ``cache_size`` leads stay in memory between
    batches (least recently used go first; 0: none). The cache only ever holds committed
    state, and it is checked against the store at every batch (the same query: a stream that
    another worker or process wrote meanwhile is brought up to date with the events it
    wrote), so it is never stale when a batch decides; a write in between the check and the
    commit fails with eventsourcing's ``IntegrityError``. The leads of a batch that fails are
    dropped from the cache (they were changed in memory), so the caller's retry reads them
    again.
    """

    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Lead: 100}
    # eventsourcing's JSON format, written and read by orjson (lifecycle.transcoding); the
    # environment's TRANSCODER_TOPIC still overrides it.
    env: ClassVar[dict[str, str]] = {"TRANSCODER_TOPIC": get_topic(OrjsonTranscoder)}

    def __init__(
        self,
        policy: Policy,
        env: Mapping[str, str] | None = None,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.policy = policy
        self.cache_size = cache_size
        self._cache: dict[UUID, Lead] = {}
        self._ids: dict[str, UUID] = {}
        # Per batch: the streams read ahead and not used yet, and those found not stored
        # (the batch may create them).
        self._read: dict[UUID, Lead] = {}
        self._absent: set[UUID] = set()
        self._lock = threading.Lock()
        super().__init__(env)
        self.personal_data: PersonalData = vault_for(
            type(self.factory).__module__,
            getattr(self.factory, "datastore", None),
            self.env.get(MASTER_KEY) or None,
        )

    def construct_recorder(self) -> ProcessRecorder:
        """A process recorder, so tracking records commit with the events they produced, that
        also keeps the store-wide index of interaction ids (``lifecycle.interaction_ids``)."""
        module = type(self.factory).__module__
        topic = recorder_topic(module)
        recorder: ProcessRecorder
        if topic is not None:
            # eventsourcing's own extension point: its factory builds our subclass, with the
            # table names and CREATE_TABLE setting it would use for its own recorder.
            self.factory.env["PROCESS_RECORDER_TOPIC"] = topic
            recorder = self.factory.process_recorder()
        elif module == "eventsourcing.popo":
            recorder = IndexedPOPOProcessRecorder()
        else:
            recorder = self.factory.process_recorder()
        if not isinstance(recorder, InteractionIndex):
            raise TypeError(
                f"{module} has no interaction-id index: leadflow stores events in "
                "eventsourcing.popo, eventsourcing.sqlite or eventsourcing.postgres"
            )
        self.process_recorder = recorder
        self.interaction_index: InteractionIndex = recorder
        return recorder

    def construct_mapper(self) -> Mapper[UUID]:
        """A ``LeadMapper``: lead events in ``lifecycle.encoding``'s format."""
        return self.factory.mapper(transcoder=self.construct_transcoder(), mapper_class=LeadMapper)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        """eventsourcing's transcodings (datetimes written faster, as the same text) plus sets
        and touches (aggregate state, snapshots)."""
        super().register_transcodings(transcoder)
        transcoder.register(DatetimeAsISOFast())  # replaces eventsourcing's: same text, faster
        transcoder.register(SetAsSortedList())
        transcoder.register(TouchAsDict())

    # -- writing ---------------------------------------------------------------------------

    def process(
        self,
        interactions: Sequence[Interaction],
        tracking: Tracking | Sequence[Tracking] | None = None,
        *,
        before_commit: Callable[[list[Outcome]], None] | None = None,
    ) -> list[Outcome]:
        """Apply a batch of interactions, in order, in one transaction with ``tracking`` (one
        position, or several: a batch ordered across partitions moves each of them).

        Returns one ``Outcome`` per interaction. Later interactions see the effects of earlier
        ones in the same batch. An interaction id already recorded (in the store or earlier in
        the batch) is a ``DUPLICATE`` when the copy goes to the lead that has it, a
        ``CONFLICT`` when it names another one; neither changes anything. The tracking record
        is stored even when the batch produces no events (all duplicates, or no interactions).
        ``before_commit`` is called with the outcomes before anything is written (so a caller
        can publish what must not be lost, e.g. the rejections of conflicts, before the
        position moves on); if it raises, nothing is stored. Raises eventsourcing's
        ``IntegrityError`` when a tracking position is not beyond the last one stored for its
        name, or when a lead or an interaction id was written concurrently elsewhere; nothing is
        then stored, and the batch may be retried.
        """
        with self._lock, self.personal_data.batch():
            touched: dict[UUID, Lead] = {}
            self._read, self._absent = {}, set()
            try:
                self.personal_data.prepare(self._streams_with_personal_data(interactions))
                # One bounded query per batch: the index itself stays in the database.
                owners = self.interaction_index.interaction_owners(
                    [interaction.id for interaction in interactions]
                )
                self._prefetch(interactions, owners)
                indexed: dict[str, tuple[UUID, str]] = {}
                leads = _BatchLeads(self, touched)
                outcomes = [
                    self._handle_once(interaction, leads, owners, indexed)
                    for interaction in interactions
                ]
                if tracking is None or isinstance(tracking, Tracking):
                    processing = ProcessingEvent[UUID](tracking)
                else:
                    processing = ProcessingEvent[UUID](tracking[0] if tracking else None)
                    if len(tracking) > 1:
                        processing.saved_kwargs[MORE_POSITIONS] = tracking[1:]
                # Filled directly: collect_events() makes runtime Protocol checks that cost
                # more than the rest of the bookkeeping per lead.
                for lead_id, lead in touched.items():
                    processing.aggregates[lead_id] = lead
                    processing.events.extend(lead.collect_events())
                if indexed:
                    processing.saved_kwargs[INTERACTION_IDS] = indexed
                if before_commit is not None:
                    before_commit(outcomes)
                recordings = self._store(processing)
            except BaseException:
                # Changed in memory, not stored: read again by the next batch (as are those
                # read ahead, which left the cache when they were read).
                for lead_id in touched:
                    self._cache.pop(lead_id, None)
                raise
            finally:
                unused, self._read, self._absent = self._read, {}, set()
            self._remember(unused)  # read ahead, current, unchanged: the older end
            self._remember(touched)
            # Under the lock: a snapshot reads leads that the next batch may change.
            self._take_snapshots(processing)
            self._notify(recordings)
        return outcomes

    def _store(self, processing: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """What ``Application._record`` does (through ``EventStore.put``), with the stored
        events handed to the recorder directly: the events, the tracking record and the ids to
        index in one ``insert_events`` call, so in one transaction. The ``Recording`` objects
        (a ``Notification`` per event) are made only for an application that overrides
        ``_notify``; this one's does nothing with them."""
        events = processing.events
        mapper = self.mapper
        if mapper.compressor is None and mapper.cipher is None:
            encode = mapper.transcoder.encode
            stored = [_stored_event(event, encode) for event in events]
        else:
            stored = [mapper.to_stored_event(event) for event in events]
        ids = self.recorder.insert_events(
            stored, tracking=processing.tracking, **processing.saved_kwargs
        )
        repository = self.repository
        if repository.cache and not repository.fastforward:
            for aggregate_id, aggregate in processing.aggregates.items():
                repository.cache.put(aggregate_id, aggregate)
        if not ids or type(self)._notify is Application._notify:
            return []
        return [
            Recording(
                event, Notification(s.originator_id, s.originator_version, s.topic, s.state, i)
            )
            for event, s, i in zip(events, stored, ids, strict=True)
        ]

    def max_tracking_id(self, application_name: str) -> int | None:
        """The last position stored under ``application_name`` (None if none yet)."""
        return self.process_recorder.max_tracking_id(application_name)

    def _handle_once(
        self,
        interaction: Interaction,
        leads: _BatchLeads,
        owners: dict[str, str],
        indexed: dict[str, tuple[UUID, str]],
    ) -> Outcome:
        """The outcome of one interaction: where it lands (``lifecycle.identity``, told the
        stream that recorded its id when ``owners``, id -> lead key from the store and from
        this batch, has it), and what the lead made of it. ``indexed`` collects the ids to
        index."""
        owner = owners.get(interaction.id)
        landing = resolve(interaction, self.policy, leads, recorded_for=owner)
        if isinstance(landing, Conflict):
            holder = landing.holder
            return Outcome(
                interaction.id,
                holder.lead_key,
                OutcomeStatus.CONFLICT,
                landing.reason,
                holder.stage,
                conflicting_lead_id=landing.named,
            )
        lead = landing.lead
        if landing.recorded:
            outcome = Outcome(
                interaction.id, lead.lead_key, OutcomeStatus.DUPLICATE, None, lead.stage
            )
        else:
            verdict = lead.record(interaction, self.policy, self._keep(lead.id, interaction))
            outcome = Outcome(
                interaction.id, lead.lead_key, verdict.status, verdict.reason, lead.stage
            )
        if owner is None:
            # A DUPLICATE here is an id its stream recorded before the index existed: indexed
            # now, so that a later copy naming another lead is caught too.
            owners[interaction.id] = outcome.lead_id
            indexed[interaction.id] = (self._id(outcome.lead_id), outcome.lead_id)
        return outcome

    def _streams_with_personal_data(self, interactions: Sequence[Interaction]) -> list[UUID]:
        """The streams the interactions with personal values will most likely be kept on (their
        lead's, else their visitor's), so that their keys are read or made in one go."""
        streams: list[UUID] = []
        for interaction in interactions:
            names = PERSONAL_FIELDS[interaction.type]
            if not names or all(getattr(interaction.data, name) is None for name in names):
                continue
            key = named_lead(interaction)
            if key is not None:
                streams.append(self._id(key))
        return streams

    def _keep(self, stream_id: UUID, interaction: Interaction) -> InteractionRecord:
        """The interaction as the stream keeps it, its personal values sealed with its key."""
        envelope, personal = split_personal(interaction)
        if not personal:
            return InteractionRecord(envelope)
        sealed = self.personal_data.seal(stream_id, interaction.id, personal)
        return InteractionRecord(envelope, tuple(sorted(personal)), sealed)

    def _id(self, lead_key: str) -> UUID:
        """``Lead.create_id``, computed once per key (bounded: cleared when it grows past
        twice the cache, as the keys of leads no longer cached are rarely asked again)."""
        lead_id = self._ids.get(lead_key)
        if lead_id is None:
            if len(self._ids) >= 2 * max(self.cache_size, 1_000):
                self._ids.clear()
            lead_id = self._ids[lead_key] = Lead.create_id(lead_key)
        return lead_id

    def _prefetch(self, interactions: Sequence[Interaction], owners: Mapping[str, str]) -> None:
        """Read, in a query or two per round, every stream the batch will look at: the leads
        and visitors its interactions name, the leads holding ids it repeats, then (once
        those are in hand) the visitors ``lifecycle.identity`` will look at with the leads
        and the leads visitors were merged into. What it misses ``_BatchLeads.load`` reads:
        the plan only saves queries."""
        keys: set[str] = set(owners.values())
        for interaction in interactions:
            named = named_lead(interaction)
            if named is not None:
                keys.add(named)
        read, absent = self._read, self._absent
        for _ in range(4):
            self._fetch(map(self._id, keys))
            keys = {lead.merged_into for lead in read.values() if lead.merged_into is not None}
            for interaction in interactions:
                if interaction.lead_id is None or interaction.anonymous_id is None:
                    continue
                unlinked = unlinked_visitor(interaction, read.get(self._id(interaction.lead_id)))
                if unlinked is not None:
                    keys.add(unlinked)
            keys = {k for k in keys if (i := self._id(k)) not in read and i not in absent}
            if not keys:
                return

    def _fetch(self, lead_ids: Iterable[UUID]) -> None:
        """Put these streams in ``_read`` as stored now (or in ``_absent``): those in the
        cache brought up to date with the events stored since (none, unless another process
        wrote them), the others read from their last snapshot on; one query for the events of
        all of them, one for the snapshots. Call it only for streams not in hand yet."""
        after: dict[UUID, int] = {}
        cached: dict[UUID, Lead] = {}
        uncached: list[UUID] = []
        read, absent = self._read, self._absent
        for lead_id in lead_ids:
            if lead_id in read or lead_id in absent or lead_id in after:
                continue
            lead = self._cache.pop(lead_id, None)
            if lead is None:
                uncached.append(lead_id)
                after[lead_id] = 0
            else:
                cached[lead_id] = lead
                after[lead_id] = lead.version
        if not after:
            return
        snapshots = (
            latest_snapshots(self.snapshots.recorder, uncached)
            if self.snapshots is not None and uncached
            else {}
        )
        for lead_id, snapshot in snapshots.items():
            after[lead_id] = snapshot.originator_version
        stored = select_streams(self.recorder, after)
        # Any: the mapper's domain events are typed as a protocol without ``mutate``.
        to_domain_event: Callable[[StoredEvent], Any] = self.mapper.to_domain_event
        for lead_id in after:
            aggregate: Any = cached.get(lead_id)
            if aggregate is None and lead_id in snapshots:
                aggregate = to_domain_event(snapshots[lead_id]).mutate(None)
            for stored_event in stored.get(lead_id, ()):
                # What Repository.get does (project_aggregate), less its per-event Protocol
                # check: each stored event applied in version order.
                aggregate = to_domain_event(stored_event).mutate(aggregate)
            if aggregate is None:
                absent.add(lead_id)
            else:
                read[lead_id] = aggregate

    def _remember(self, touched: dict[UUID, Lead]) -> None:
        if self.cache_size <= 0:
            return
        cache = self._cache
        cache.update(touched)  # popped on load, so these go to the young end
        excess = len(cache) - self.cache_size
        if excess > 0:
            for lead_id in list(islice(cache, excess)):
                del cache[lead_id]

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        # Snapshot the leads in hand at their current version rather than re-reading the
        # store at each multiple of the interval, as the base class does.
        if self.snapshots is None:
            return
        interval = self.snapshotting_intervals.get(Lead)
        if not interval:
            return
        due = {
            e.originator_id for e in processing_event.events if e.originator_version % interval == 0
        }
        snapshots = [
            Lead.Snapshot.take(processing_event.aggregates[lead_id])
            for lead_id in due
            if lead_id in processing_event.aggregates
        ]
        if snapshots:
            self.snapshots.put(snapshots)

    # -- personal data ---------------------------------------------------------------------

    def forget(
        self, lead_key: str, *, at: datetime, reference: str | None = None, attempts: int = 5
    ) -> Erasure:
        """Erase the personal data of the lead (or visitor) ``lead_key`` and of the visitors
        merged into it: destroy their keys (committed first), then record
        ``PersonalDataErased`` on each stream at ``at``. Their stages, score, touches and
        history otherwise stay as they are, and the hash chains still hold. Forgetting again
        records nothing unless a key was left to destroy (a visitor linked since). Raises
        ``LeadNotFoundError`` for a key with no stream.
        """
        with self._lock:
            for attempt in range(1, attempts + 1):
                lead = self._stored(lead_key)
                visitors = [
                    visitor
                    for anonymous_id in lead.linked_anonymous_ids
                    if (visitor := self._stored_or_none(visitor_key(anonymous_id))) is not None
                ]
                streams = [lead, *visitors]
                destroyed = self.personal_data.forget([s.id for s in streams], at)
                recorded = [
                    s for s in streams if s.id in destroyed or s.personal_data_erased_at is None
                ]
                for stream in recorded:
                    stream.erase_personal_data(
                        at=at,
                        policy=self.policy,
                        interactions=self._with_personal_data(stream.id),
                        visitors=[v.lead_key.removeprefix(ANONYMOUS_PREFIX) for v in visitors]
                        if stream is lead
                        else [],
                        merged_into=lead.lead_key if stream is not lead else None,
                        reference=reference,
                    )
                for stream in streams:
                    self._cache.pop(stream.id, None)
                try:
                    if recorded:
                        self.save(*recorded)
                except IntegrityError:
                    if attempt == attempts:
                        raise
                    continue  # a worker wrote one of the streams meanwhile: read them again
                return Erasure(
                    lead_id=lead.lead_key,
                    streams=tuple(s.lead_key for s in streams),
                    destroyed=tuple(s.lead_key for s in streams if s.id in destroyed),
                    recorded=tuple(s.lead_key for s in recorded),
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def _stored(self, lead_key: str) -> Lead:
        lead = self._stored_or_none(lead_key)
        if lead is None:
            raise LeadNotFoundError(lead_key)
        return lead

    def _stored_or_none(self, lead_key: str) -> Lead | None:
        try:
            lead: Lead = self.repository.get(Lead.create_id(lead_key))
        except AggregateNotFoundError:
            return None
        return lead

    def _with_personal_data(self, stream_id: UUID) -> int:
        """How many interactions of the stream were kept with personal values."""
        return sum(
            1
            for e in self.events.get(stream_id)
            if isinstance(e, Lead.InteractionRecorded | Lead.TransitionRefused) and e.personal
        )

    def personal_values(self, event: object) -> dict[str, str] | None:
        """The personal values a stored event kept of its interaction, opened with its
        stream's key; each reads ``ERASED`` when the key was destroyed (or they were never
        kept). None for an event that kept none. Use within ``personal_data.batch()`` to open
        many events of a stream with one key read."""
        if not isinstance(event, Lead.InteractionRecorded | Lead.TransitionRefused):
            return None
        names = event.personal
        if not names:
            return None
        opened: dict[str, str] | None = None
        if event.sealed is not None and event.interaction_id is not None:
            opened = self.personal_data.open(
                event.originator_id, event.interaction_id, event.sealed
            )
        found = opened or {}
        return {name: found.get(name, ERASED) for name in names}

    # -- reading ---------------------------------------------------------------------------

    def lead(self, lead_key: str) -> LeadView:
        """The lead (or visitor) with this key as stored; raises ``LeadNotFoundError``."""
        try:
            lead: Lead = self.repository.get(Lead.create_id(lead_key))
        except AggregateNotFoundError:
            raise LeadNotFoundError(lead_key) from None
        return self._view(lead)

    def record_position(self, name: str, position: int) -> None:
        """Record ``position`` as consumed by ``name``, and nothing else; raises
        ``StoreConflictError`` when that position (or a later one) is recorded already."""
        self.recorder.insert_events([], tracking=Tracking(name, position))

    def notification_pages(self, after: int = 0) -> Iterator[Sequence[Notification]]:
        """The notification log after id ``after``, in order, ``NOTIFICATION_PAGE`` rows at a
        time (memory stays flat however large the store)."""
        position = after
        while True:
            page = self.recorder.select_notifications(
                start=position, limit=NOTIFICATION_PAGE, inclusive_of_start=False
            )
            if not page:
                return
            yield page
            position = page[-1].id

    def lifecycle_events(self, after: int = 0) -> Iterator[LifecycleEvent]:
        """Every lifecycle event in the notification log after id ``after``, in order."""
        to_domain_event = self.mapper.to_domain_event
        for page in self.notification_pages(after):
            for notification in page:
                yield to_lifecycle_event(to_domain_event(notification))

    def lead_events(self, lead_key: str) -> list[LifecycleEvent]:
        """Every lifecycle event of the lead, in order (empty for an unknown key)."""
        return [to_lifecycle_event(e) for e in self.events.get(Lead.create_id(lead_key))]

    def view(self, lead: Lead) -> LeadView:
        """A Lead aggregate in hand (from ``lifecycle.history``: as it stood at some past moment)
        as this application shows leads."""
        return self._view(lead)

    def _view(self, lead: Lead) -> LeadView:
        scoring = self.policy.scoring
        entered = {Stage(stage): at for stage, at in lead.stage_entered.items()}
        return LeadView(
            lead_id=lead.lead_key,
            stage=lead.stage,
            score=lead.score,
            fit=lead.fit,
            engagement=lead.engagement,
            engagement_as_of=lead.engagement_as_of,
            temperature=temperature(lead.score, scoring),
            stage_entered=entered,
            touches=lead.touch_count,
            interactions=len(lead.interaction_ids),
            policy=PolicyRef(name=lead.policy_name, version=lead.policy_version),
            anonymous=lead.anonymous,
            merged_into=lead.merged_into,
            linked_anonymous_ids=tuple(lead.linked_anonymous_ids),
            first_occurred_at=lead.first_occurred_at,
            last_occurred_at=lead.last_occurred_at,
            first_sales_touch_at=lead.first_sales_touch_at,
            first_touch_due_at=self._due(lead, entered),
        )

    def _due(self, lead: Lead, entered: Mapping[Stage, datetime]) -> datetime | None:
        sla = self.policy.sla
        stage = lead.stage
        if stage is Stage.MQL:
            hours = sla.mql_first_touch_hours
        elif stage is Stage.LEAD:
            hours = sla.lead_first_touch_hours
        else:
            return None
        since = entered[stage]
        touched = lead.last_sales_touch_at
        if touched is not None and touched >= since:
            return None
        return since + timedelta(hours=hours)


class _BatchLeads:
    """The leads of one ``process()`` batch, as identity resolution reads and begins them
    (``lifecycle.identity.Leads``): read through the application (its cache and the store),
    each put in ``touched`` in the order they are first used, as the events of the batch are
    stored in that order."""

    __slots__ = ("_app", "_touched")

    def __init__(self, app: LeadLifecycle, touched: dict[UUID, Lead]) -> None:
        self._app = app
        self._touched = touched

    def load(self, lead_key: str) -> Lead | None:
        """The lead with this key as the batch has it (None: not stored, not begun yet). Read
        by ``_prefetch`` as a rule; a stream it did not foresee is read here the same way."""
        app = self._app
        lead_id = app._id(lead_key)
        touched = self._touched
        lead = touched.get(lead_id)
        if lead is not None or lead_id in app._absent:
            return lead
        lead = app._read.pop(lead_id, None)
        if lead is None:
            app._fetch((lead_id,))
            lead = app._read.pop(lead_id, None)
            if lead is None:
                return None
        touched[lead_id] = lead
        return lead

    def register(
        self,
        lead_key: str,
        interaction: Interaction,
        policy: Policy,
        *,
        anonymous: bool,
        announce: bool | None = None,
    ) -> Lead:
        """``Lead.register``, the stream kept with the batch's leads."""
        lead = Lead.register(
            lead_key,
            interaction,
            policy,
            anonymous=anonymous,
            announce=announce,
            id=self._app._id(lead_key),
        )
        self._touched[lead.id] = lead
        return lead


def _stored_event(domain_event: Any, encode: Callable[[Any], bytes]) -> StoredEvent:
    """What ``LeadMapper.to_stored_event`` makes of an event when it neither compresses nor
    encrypts."""
    attributes = domain_event.__dict__
    # The object StoredEvent(...) makes, without the frozen dataclass's ``__init__`` (an
    # ``object.__setattr__`` per field, for every event stored): its ``__dict__`` set at once,
    # as eventsourcing's mapper revives domain events.
    stored = _new_object(StoredEvent)
    _set_attribute(
        stored,
        "__dict__",
        {
            "originator_id": attributes["originator_id"],
            "originator_version": attributes["originator_version"],
            "topic": get_topic(type(domain_event)),
            "state": stored_state(domain_event, encode),
        },
    )
    return stored


_new_object = object.__new__
_set_attribute = object.__setattr__


_NOT_ENCODED = frozenset({"originator_id", "originator_version", "chain", "previous_chain"})


def stored_state(domain_event: Any, encode: Callable[[Any], bytes]) -> bytes:
    """The stored state of an event (before compression or encryption): for a lead event
    chained in ``lifecycle.encoding``'s format, the bytes made with its chain (taken out of the
    event, or made again: the same bytes, since they are a function of its attributes); for
    any other event, eventsourcing's: its attributes but the stream and version, then its class
    version when above 1, encoded by the transcoder ``encode``."""
    attributes = domain_event.__dict__
    state: bytes | None = attributes.pop(STATE, None)
    if state is not None:
        return state
    cls = type(domain_event)
    if isinstance(domain_event, Lead.Event) and attributes.get("previous_chain"):
        encoded = encode_event(
            cls.__name__,
            {k: v for k, v in attributes.items() if k not in _NOT_ENCODED},
            attributes["originator_id"],
            attributes["originator_version"],
            attributes["previous_chain"],
        )
        if encoded is not None and encoded[1] == attributes["chain"]:
            return encoded[0]
    values = dict(attributes)
    del values["originator_id"], values["originator_version"]
    class_version = getattr(cls, "class_version", 1)
    if class_version > 1:
        values["class_version"] = class_version
    return encode(values)


class LeadMapper(Mapper[UUID]):
    """eventsourcing's mapper, with lead events in ``lifecycle.encoding``'s format: written
    in it when they were chained in it (``stored_state``), read from it when stored in it;
    every other event and state (snapshots, lead events stored before that format) as
    eventsourcing maps them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._classes: dict[str, tuple[type[Any], tuple[str, ...]]] = {}

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        """The stored event of ``domain_event`` (see the class docstring)."""
        if STATE not in domain_event.__dict__ and not isinstance(domain_event, Lead.Event):
            return super().to_stored_event(domain_event)
        state = stored_state(domain_event, self.transcoder.encode)
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        attributes = domain_event.__dict__
        return StoredEvent(
            originator_id=attributes["originator_id"],
            originator_version=attributes["originator_version"],
            topic=get_topic(type(domain_event)),
            state=state,
        )

    def open(self, state: bytes) -> bytes:
        """A stored state deciphered and decompressed, as this mapper reads it."""
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        return state

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        """The domain event of ``stored_event`` (see the class docstring)."""
        try:
            state = self.open(stored_event.state)
        except Exception:
            return super().to_domain_event(stored_event)  # which raises as it always did
        if not is_encoded(state):
            return super().to_domain_event(stored_event)
        topic = stored_event.topic
        known = self._classes.get(topic)
        if known is None:
            cls = resolve_topic(topic)
            fields = tuple(
                f.name
                for f in dataclasses.fields(cls)
                if f.name not in ("originator_id", "originator_version")
            )
            known = self._classes[topic] = (cls, fields)
        cls, fields = known
        try:
            attributes = decode_attributes(cls.__name__, state, fields)
        except Exception as error:
            raise MapperDeserialisationError(
                f"Failed to deserialise state of stored event with topic '{topic}', "
                f"originator_id '{stored_event.originator_id}' and "
                f"originator_version {stored_event.originator_version}: {error!r}"
            ) from error
        originator_id = stored_event.originator_id
        attributes["originator_id"] = (
            originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
        )
        attributes["originator_version"] = stored_event.originator_version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", attributes)
        return event


def to_lifecycle_event(domain_event: object) -> LifecycleEvent:
    """The wire form of a stored Lead event (snapshots and other events raise ``TypeError``).

    ``event_id`` is derived from the stream id and version, so it stays the same however often
    the event is published; ``sequence`` is the version; ``recorded_at`` is when leadflow
    recorded the event, ``occurred_at`` the business time it describes.
    """
    if not isinstance(domain_event, Lead.Event):
        raise TypeError(f"not a lifecycle event: {type(domain_event).__qualname__}")
    e = domain_event
    data: LifecycleData
    if isinstance(e, Lead.Registered):
        data = wire.LeadCreated(
            stage=STAGE_BY_VALUE[e.stage],
            channel=CHANNEL_BY_VALUE[e.channel],
            campaign=e.campaign,
            anonymous=e.anonymous,
        )
    elif isinstance(e, Lead.InteractionRecorded):
        # The account and job title are read from the kept interaction (events recorded before
        # leadflow kept it have neither).
        kept = e.interaction or {}
        data = wire.InteractionRecorded(
            interaction_type=INTERACTION_TYPE_BY_VALUE[e.interaction_type],
            channel=CHANNEL_BY_VALUE[e.channel],
            campaign=e.campaign,
            form_kind=FORM_KIND_BY_VALUE[e.form_kind] if e.form_kind is not None else None,
            sales_touch=e.sales_touch,
            account_id=kept.get("account_id"),
            job_title=(kept.get("data") or {}).get("job_title"),
        )
    elif isinstance(e, Lead.ScoreChanged):
        data = wire.ScoreChanged(
            previous_score=e.previous_score,
            score=e.score,
            fit=e.fit,
            engagement=e.engagement,
            temperature=TEMPERATURE_BY_VALUE[e.temperature],
            previous_temperature=TEMPERATURE_BY_VALUE[e.previous_temperature],
            rule=e.rule,
        )
    elif isinstance(e, Lead.StageChanged):
        data = wire.StageChanged(
            from_stage=STAGE_BY_VALUE[e.from_stage] if e.from_stage is not None else None,
            to_stage=STAGE_BY_VALUE[e.to_stage],
            rule=e.rule,
            reason=e.reason,
            amount=e.amount,
            currency=e.currency,
            margin=e.margin,
        )
    elif isinstance(e, Lead.TransitionRefused):
        data = wire.TransitionRefused(
            current_stage=STAGE_BY_VALUE[e.current_stage], requested=e.requested, reason=e.reason
        )
    elif isinstance(e, Lead.IdentityLinked):
        data = wire.IdentityLinked(
            anonymous_id=e.anonymous_id, touches=tuple(e.touches), merged_into=e.merged_into
        )
    elif isinstance(e, Lead.PersonalDataErased):
        data = wire.PersonalDataErased(
            interactions=e.interactions,
            visitors=tuple(e.visitors),
            merged_into=e.merged_into,
            reference=e.reference,
        )
    else:
        raise TypeError(f"not a lifecycle event: {type(domain_event).__qualname__}")
    kind = LIFECYCLE_TYPE_OF[type(data)]
    return LifecycleEvent(
        event_id=lifecycle_event_id(e.originator_id, e.originator_version),
        lead_id=e.lead_key,
        sequence=e.originator_version,
        type=kind,
        version=LIFECYCLE_VERSIONS[kind],
        occurred_at=e.occurred_at,
        recorded_at=e.timestamp,
        policy=_policy_ref(e.policy_name, e.policy_version),
        data=data,
        interaction_id=e.interaction_id,
        # The hash chain (lifecycle.chain); empty on events recorded before it.
        chain=e.chain or None,
        previous_chain=e.previous_chain or None,
    )


_POLICY_REFS: dict[tuple[str, str], PolicyRef] = {}


def _policy_ref(name: str, version: str) -> PolicyRef:
    """One (immutable) ``PolicyRef`` per policy, not one per event."""
    if type(name) is not str or type(version) is not str:
        return PolicyRef(name=name, version=version)  # as stored, however malformed
    ref = _POLICY_REFS.get((name, version))
    if ref is None:
        if len(_POLICY_REFS) >= 1_000:
            _POLICY_REFS.clear()
        ref = _POLICY_REFS[(name, version)] = PolicyRef(name=name, version=version)
    return ref
