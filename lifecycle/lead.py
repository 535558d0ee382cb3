"""The Lead aggregate: one person's lifecycle under a policy, as an event-sourced state machine.

A lead's stream is keyed by its lead key: upstream's ``lead_id``, or ``anon:<anonymous_id>`` for
a visitor known only by an anonymous id (``visitor_key``). Its id is ``uuid5`` of that key, so
the same person always lands on the same stream.

Public methods decide (they read the policy and raise or refuse before anything changes); the
private apply methods (``_stage_changed`` ..., each called by its event class's ``apply``) only
assign, never raise and never read a clock, because they run again on every replay. Every
event carries the lead key, the business time it describes (``occurred_at``), the interaction
that caused it, the rule that fired and the policy's name and version. An interaction is
recorded at most once per lead, by its id, however late and however changed its copy arrives.
A request the policy forbids is recorded as ``TransitionRefused`` and changes nothing else.

A stream announces its first stage with a ``StageChanged`` from no stage; until then it is nobody
in the funnel (no read model, no stage subscriber counts it). A stream is announced when it
begins, unless its first interaction is refused: then it holds only ``Registered`` and the
refusal (its history keeps the refusal) and announces its stage with the first interaction it
accepts, or when a visitor with touches is linked to it (that person was someone already).

Each recorded (or refused) interaction is kept whole in the stream (``InteractionRecord``): its
JSON object without its personal values, the names of its personal fields, and their values
sealed by the application with a key per stream (``lifecycle.personal``). To the aggregate the
sealed values are an opaque string; it never sees a key. ``PersonalDataErased`` records that the
key was destroyed.

Hash chain: every event stores ``chain``, the SHA-256 of ``previous_chain`` (the lead's previous
event's ``chain``, or ``chain_genesis(stream id)`` for the first) and the event's stored bytes
before its chain values (``lifecycle.encoding``: the event is encoded once, when it is made, and
those bytes are stored and published); an event that encoding would not hold exactly, and every
event stored before it, chains over the canonical JSON of its content instead (``chain_hash``).
It is computed where the event is triggered (``_create``, ``trigger_event``), before anything is
applied, so the stored event carries it and the apply methods stay assignments.
``lifecycle.chain`` defines it; ``lifecycle.audit`` rechecks it from the stored rows.

Errors (``lifecycle.errors``)::

    LeadError
    ├── PolicyError
    ├── LeadNotFoundError
    ├── MisroutedInteractionError
    └── IllegalTransitionError
        ├── StageNotInPolicyError
        ├── TerminalStageError
        └── RequirementsNotMetError
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, OriginatorIDError, OriginatorVersionError
from eventsourcing.utils import get_topic, resolve_topic

from contracts.codec import split_personal
from contracts.interactions import (
    CallLogged,
    DealLost,
    DealWon,
    Disqualified,
    EmailEngaged,
    FormSubmitted,
    Interaction,
    OpportunityOpened,
    QualificationRecorded,
    Recycled,
)
from contracts.lifecycle_events import Touch
from contracts.types import ANONYMOUS_PREFIX
from contracts.vocabulary import (
    CHANNEL_BY_VALUE,
    INTERACTION_TYPE_BY_VALUE,
    STAGE_BY_VALUE,
    Stage,
    Temperature,
)
from lifecycle.chain import chain_genesis, chain_hash
from lifecycle.encoding import STATE, encode_event
from lifecycle.errors import (
    IllegalTransitionError,
    MisroutedInteractionError,
    RequirementsNotMetError,
    StageNotInPolicyError,
    TerminalStageError,
)
from lifecycle.policy import REQUEST_TARGETS, Policy, Rule
from lifecycle.scoring import (
    engagement_after,
    engagement_points,
    fit_score,
    profile_of,
    temperature,
)

LEAD_NAMESPACE = UUID("0b0f5a52-6d1e-5c8e-9a47-5f3c1e7d2a90")
"""The uuid5 namespace of lead ids (never change it: it names every stored stream)."""

RULE_FIRST_TOUCH = "first_touch"
"""Rule name of a lead created in its policy's entry stage because no rule moved it further."""
RULE_ANONYMOUS_TOUCH = "anonymous_touch"
"""Rule name of a visitor's creation (a touch by someone known only by an anonymous id)."""
RULE_RECORDED = "recorded"
"""Rule name of an ``InteractionRecorded`` event."""
RULE_IDENTITY = "identity_linked"
"""Rule name of an ``IdentityLinked`` event."""

LINKED_TOUCHES_PER_EVENT = 200
"""Most touches (and interaction ids) one ``IdentityLinked`` carries; more come in several
events. At the contracts' longest ids and campaign names a touch takes under 4 KiB of JSON, so
an event stays well inside a 1 MiB Kafka message."""

ERASED_VISITORS_PER_EVENT = 500
"""Most merged visitors one ``PersonalDataErased`` names; more come in several events. An
anonymous id takes under 1 KiB of JSON, so an event stays well inside a 1 MiB Kafka message."""
RULE_ERASED = "personal_data_erased"
"""Rule name of a ``PersonalDataErased`` event."""


def visitor_key(anonymous_id: str) -> str:
    """The lead key of a visitor known only by ``anonymous_id``."""
    return ANONYMOUS_PREFIX + anonymous_id


class OutcomeStatus(StrEnum):
    """What became of an interaction."""

    ACCEPTED = "accepted"
    """Recorded (whether or not it moved the lead)."""
    DUPLICATE = "duplicate"
    """Already recorded under the same interaction id; nothing changed."""
    REFUSED = "refused"
    """It asked for a move the policy forbids; the refusal is recorded, nothing else changed."""
    CONFLICT = "conflict"
    """Its interaction id is already recorded for another lead (a conflicting duplicate): nothing
    changed, and the copy is rejected naming both leads (decided by ``lifecycle.identity``
    from the store-wide index of interaction ids; a lead alone never returns it)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a lead made of one interaction: the status and, when refused, why."""

    status: OutcomeStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class InteractionRecord:
    """An interaction as a lead's stream keeps it.

    ``envelope`` is its JSON object (``contracts.split_personal``) without personal values,
    ``personal`` the names of the personal fields it had values for, and ``sealed`` those
    values as the application sealed them (None: there were none, or they were not kept).
    """

    envelope: dict[str, Any]
    personal: tuple[str, ...] = ()
    sealed: str | None = None

    @classmethod
    def unsealed(cls, interaction: Interaction) -> InteractionRecord:
        """The record of an interaction whose personal values are not kept (only named)."""
        envelope, personal = split_personal(interaction)
        return cls(envelope, tuple(sorted(personal)), None)


_ACCEPTED = Verdict(OutcomeStatus.ACCEPTED)
_DUPLICATE = Verdict(OutcomeStatus.DUPLICATE)


class Lead(Aggregate):
    """A person in the funnel (or a visitor known only by an anonymous id).

    State: the stage and when each stage was last entered, the score's parts (fit, engagement
    and the business time engagement was computed at), the profile used for fit, the ids of
    every interaction recorded (for idempotency), a count of touches, and for visitors their
    touches (handed to the lead they are linked to).
    """

    class Event(Aggregate.Event):
        """What every lead event carries besides the aggregate id and version.

        ``chain`` links the event to ``previous_chain`` (see ``chain_hash``). Version 1 events
        (recorded before the chain existed) are upcast with both empty.
        """

        lead_key: str
        occurred_at: datetime
        interaction_id: str | None
        rule: str
        policy_name: str
        policy_version: str
        chain: str
        previous_chain: str

        class_version: ClassVar[int] = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Events stored before the hash chain: unchained (empty values)."""
            state["chain"] = ""
            state["previous_chain"] = ""

        def apply(self, aggregate: Any) -> None:
            """Every event moves the lead's chain head (after its own apply method)."""
            aggregate._chain_head = self.chain

        def mutate(self, aggregate: Any) -> Any:
            """What eventsourcing's ``CanMutateAggregate.mutate`` does (check the stream and
            the version, apply, move the version and the modified time), without its property
            calls: it runs for every event of every lead read."""
            state = self.__dict__
            if state["originator_id"] != aggregate._id:
                raise OriginatorIDError(state["originator_id"], aggregate._id)
            version = state["originator_version"]
            if version != aggregate._version + 1:
                raise OriginatorVersionError(version, aggregate._version + 1)
            self.apply(aggregate)
            aggregate._version = version
            aggregate._modified_on = state["timestamp"]
            return aggregate

    class Registered(Event, Aggregate.Created):
        """The lead's stream began, in ``stage`` (``anonymous`` for a visitor)."""

        stage: str
        channel: str
        campaign: str | None
        anonymous: bool

        def mutate(self, aggregate: Any) -> Any:
            """The lead this event begins (what eventsourcing's ``CanInitAggregate.mutate``
            does, with the attributes passed by name rather than filtered by signature)."""
            if aggregate is not None:
                raise OriginatorVersionError(self.originator_version, aggregate.version + 1)
            lead_class: type[Lead] = resolve_topic(self.originator_topic)
            lead = lead_class.__new__(lead_class)
            lead.__base_init__(self.originator_id, self.originator_version, self.timestamp)
            lead.__init__(  # type: ignore[misc]  # the aggregate's own initialiser, as the base does
                lead_key=self.lead_key,
                occurred_at=self.occurred_at,
                interaction_id=self.interaction_id,
                rule=self.rule,
                policy_name=self.policy_name,
                policy_version=self.policy_version,
                stage=self.stage,
                channel=self.channel,
                campaign=self.campaign,
                anonymous=self.anonymous,
            )
            self.apply(lead)
            return lead

    class InteractionRecorded(Event):
        """An interaction was recorded; ``profile`` holds the fit attributes it updated.

        ``interaction``, ``personal`` and ``sealed`` keep the whole interaction (see
        ``InteractionRecord``); events recorded before leadflow kept it lack them (None).
        """

        interaction_type: str
        channel: str
        campaign: str | None
        form_kind: str | None
        sales_touch: bool
        profile: dict[str, str | int]
        interaction: dict[str, Any] | None = None
        personal: list[str] | None = None
        sealed: str | None = None

        def apply(self, aggregate: Any) -> None:
            a = self.__dict__
            aggregate._interaction_recorded(a)
            aggregate._chain_head = a["chain"]

    class ScoreChanged(Event):
        """The score changed; engagement is as of ``engagement_as_of`` (business time)."""

        previous_score: float
        score: float
        fit: float
        engagement: float
        engagement_as_of: datetime
        temperature: str
        previous_temperature: str

        def apply(self, aggregate: Any) -> None:
            a = self.__dict__
            aggregate.fit = a["fit"]
            aggregate.engagement = a["engagement"]
            aggregate.engagement_as_of = a["engagement_as_of"]
            aggregate._chain_head = a["chain"]

    class StageChanged(Event):
        """The lead moved from ``from_stage`` (None when its stream began) to ``to_stage``."""

        from_stage: str | None
        to_stage: str
        reason: str
        amount: float | None
        currency: str | None
        margin: float | None

        def apply(self, aggregate: Any) -> None:
            a = self.__dict__
            aggregate._stage_changed(a["occurred_at"], a["from_stage"], a["to_stage"])
            aggregate._chain_head = a["chain"]

    class TransitionRefused(Event):
        """A requested move was refused; the interaction is kept as for ``InteractionRecorded``
        (but for refusals recorded before leadflow kept it), and only its id counts."""

        current_stage: str
        requested: str
        reason: str
        interaction: dict[str, Any] | None = None
        personal: list[str] | None = None
        sealed: str | None = None

        def apply(self, aggregate: Any) -> None:
            aggregate._transition_refused(interaction_id=self.interaction_id)
            aggregate._chain_head = self.chain

    class IdentityLinked(Event):
        """An anonymous id was linked to a lead.

        On the lead: ``touches`` and ``interaction_ids`` are the visitor's, now the lead's.
        On the visitor: ``merged_into`` names the lead that its later touches go to.
        """

        anonymous_id: str
        touches: list[Touch]
        interaction_ids: list[str]
        merged_into: str | None

        def apply(self, aggregate: Any) -> None:
            aggregate._identity_linked(
                touches=self.touches,
                interaction_ids=self.interaction_ids,
                anonymous_id=self.anonymous_id,
                merged_into=self.merged_into,
            )
            aggregate._chain_head = self.chain

    class PersonalDataErased(Event):
        """The key of the stream's personal data was destroyed (see ``wire.PersonalDataErased``):
        ``occurred_at`` is when, ``interactions`` how many recorded interactions had personal
        values here, ``visitors`` the merged visitors erased with a lead, ``merged_into`` the
        lead a visitor was erased with."""

        interactions: int
        visitors: list[str]
        merged_into: str | None
        reference: str | None

        def apply(self, aggregate: Any) -> None:
            aggregate._personal_data_erased(occurred_at=self.occurred_at)
            aggregate._chain_head = self.chain

    @staticmethod
    def create_id(lead_key: str) -> UUID:
        """The stream id of a lead key (deterministic: ``uuid5`` of the key)."""
        return uuid5(LEAD_NAMESPACE, lead_key)

    def __init__(
        self,
        *,
        lead_key: str,
        occurred_at: datetime,
        interaction_id: str | None,
        rule: str,
        policy_name: str,
        policy_version: str,
        stage: str,
        channel: str,
        campaign: str | None,
        anonymous: bool,
    ) -> None:
        self.lead_key = lead_key
        self.anonymous = anonymous
        self.stage_value = stage
        self.stage_entered: dict[str, datetime] = {stage: occurred_at}
        self.fit = 0.0
        self.engagement = 0.0
        self.engagement_as_of: datetime | None = None
        self.profile: dict[str, str | int] = {}
        self.profile_at: dict[str, datetime] = {}
        self.interaction_ids: set[str] = set()
        self.touches: list[Touch] = []
        self.touch_count = 0
        self.first_occurred_at = occurred_at
        self.last_occurred_at = occurred_at
        self.first_sales_touch_at: datetime | None = None
        self.last_sales_touch_at: datetime | None = None
        self.linked_anonymous_ids: list[str] = []
        self.merged_into: str | None = None
        self.policy_name = policy_name
        self.policy_version = policy_version
        # Bookkeeping like the version: the chain of the last event applied (Event.apply).
        self._chain_head = ""
        # Set by the StageChanged from no stage that announces the stream's first stage.
        self._announced = False

    # -- reading ---------------------------------------------------------------------------

    @property
    def stage(self) -> Stage:
        """The lead's current stage."""
        return STAGE_BY_VALUE[self.stage_value]

    @property
    def score(self) -> float:
        """Fit plus engagement as of the last scored interaction (no decay since)."""
        return round(self.fit + self.engagement, 4)

    def temperature(self, policy: Policy) -> Temperature:
        """The temperature of the current score under ``policy``'s bands."""
        return temperature(self.score, policy.scoring)

    @property
    def chain_head(self) -> str:
        """The ``chain`` of the last event applied ("" before any chained event)."""
        head: str = self.__dict__.get("_chain_head", "")
        return head

    @property
    def announced(self) -> bool:
        """Whether the stream has announced its first stage (see the module docstring): False
        only while every interaction it was asked to record has been refused."""
        # Snapshots taken before the flag existed lack it; every stream was announced then.
        announced: bool = self.__dict__.get("_announced", True)
        return announced

    @property
    def personal_data_erased_at(self) -> datetime | None:
        """When the stream's personal data was last erased (None: never)."""
        at: datetime | None = self.__dict__.get("_personal_data_erased_at")
        return at

    def has_recorded(self, interaction_id: str) -> bool:
        """True when an interaction with this id has been recorded (or refused) here."""
        return interaction_id in self.interaction_ids

    # -- the hash chain ----------------------------------------------------------------------

    # Events are made here, not by eventsourcing's ``_create`` / ``trigger_event``: those call
    # the frozen dataclass's ``__init__`` (a ``__setattr__`` per attribute) and copy and filter
    # the keyword arguments more than once per event, about a third of an interaction's cost.
    # ``_new_event`` builds the same object the way eventsourcing's mapper revives a stored one
    # (``object.__new__`` and its ``__dict__``, attributes in the dataclass's field order, so the
    # stored bytes are unchanged) and everything else they do is done here: the next version,
    # the recorded time (``create_timestamp``, once per event), apply, the version and modified
    # time, the pending list.

    @classmethod
    def _create(cls, event_class: type[Any], *, id: UUID | None = None, **kwargs: Any) -> Any:
        """Begin a stream with ``event_class`` (a ``Registered``), chained to the genesis value
        of the stream (``Lead.create_id`` of its lead key unless ``id`` is given)."""
        stream_id = id if id is not None else cls.create_id(kwargs["lead_key"])
        created = _new_event(
            event_class,
            stream_id,
            cls.INITIAL_VERSION,
            chain_genesis(stream_id),
            kwargs,
            originator_topic=get_topic(cls),
        )
        lead = created.mutate(None)
        lead._pending_events.append(created)
        return lead

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        """Make the next event of the stream, chained to the lead's last one, apply it and
        keep it pending (what eventsourcing's ``trigger_event`` promises)."""
        # A lead restored from a snapshot taken before the chain existed has no head yet.
        previous = self.__dict__.get("_chain_head") or chain_genesis(self._id)
        version = self._version + 1
        new = _new_event(event_class, self._id, version, previous, kwargs)
        new.apply(self)
        self._version = version
        self._modified_on = new.timestamp
        self._pending_events.append(new)

    # -- deciding --------------------------------------------------------------------------

    @classmethod
    def register(
        cls,
        lead_key: str,
        interaction: Interaction,
        policy: Policy,
        *,
        anonymous: bool,
        announce: bool | None = None,
        id: UUID | None = None,
    ) -> Lead:
        """Start a lead's stream from its first interaction (which is not yet recorded).

        A visitor starts in the policy's anonymous entry stage. An identified person starts
        in the identified entry stage, or directly where the furthest matching interaction
        rule legally takes them from there (a first-time demo request starts an MQL). The
        first stage is announced by a ``StageChanged`` from no stage, so stage subscribers see
        every entry; when the interaction will be refused (``announce``: by default whether
        ``record`` accepts it on this stream) nothing is announced, so that a refused first
        interaction makes nobody. ``id``: ``create_id(lead_key)``, when the caller has it.
        """
        stage, rule, reason = _entry(interaction, policy, anonymous=anonymous)
        meta = _meta(lead_key, interaction, policy)
        lead: Lead = cls._create(
            Lead.Registered,
            id=id,
            **meta,
            rule=rule,
            stage=stage._value_,
            channel=interaction.channel._value_,
            campaign=interaction.campaign,
            anonymous=anonymous,
        )
        if announce is None:
            announce = lead.accepts(interaction, policy)
        if announce:
            lead._announce(meta, stage, rule, reason)
        return lead

    def accepts(self, interaction: Interaction, policy: Policy) -> bool:
        """Whether ``record`` would accept the interaction rather than refuse it (it records
        nothing; a duplicate counts as accepted)."""
        if interaction.type not in REQUEST_TARGETS:
            return True
        try:
            self._check_request(interaction, policy)
        except IllegalTransitionError:
            return False
        return True

    def _announce(self, meta: dict[str, Any], stage: Stage, rule: str, reason: str) -> None:
        self.trigger_event(
            Lead.StageChanged,
            **meta,
            rule=rule,
            from_stage=None,
            to_stage=stage._value_,
            reason=reason,
            amount=None,
            currency=None,
            margin=None,
        )

    def record(
        self, interaction: Interaction, policy: Policy, kept: InteractionRecord | None = None
    ) -> Verdict:
        """Record an interaction and apply the policy's rules to it.

        ``kept`` is the interaction as the stream keeps it, its personal values sealed by the
        application; without it they are not kept (``InteractionRecord.unsealed``).

        A duplicate (same interaction id) changes nothing. An explicit request the policy
        forbids is recorded as ``TransitionRefused`` and changes nothing else. Otherwise the
        interaction is recorded, an identified lead is rescored, and the request or the
        furthest matching interaction rule moves the lead where the policy allows; then, if
        the interaction raised the score, the score rules whose threshold it reaches. (So a
        recycled lead that is still hot waits for its next engagement, not its recycle, to be
        an MQL again.) Raises ``MisroutedInteractionError`` for a visitor merged into a lead.
        """
        if self.merged_into is not None:
            raise MisroutedInteractionError(
                f"{self.lead_key} was merged into {self.merged_into}; record there"
            )
        if interaction.id in self.interaction_ids:
            return _DUPLICATE
        meta = _meta(self.lead_key, interaction, policy)
        if kept is None:
            kept = InteractionRecord.unsealed(interaction)
        move: tuple[Rule, Stage] | None = None
        if interaction.type in REQUEST_TARGETS:
            try:
                move = self._check_request(interaction, policy)
            except IllegalTransitionError as refusal:
                rule = policy.request_rule(interaction.type)
                self.trigger_event(
                    Lead.TransitionRefused,
                    **meta,
                    rule=rule.name if rule is not None else interaction.type.value,
                    current_stage=self.stage_value,
                    requested=refusal.requested,
                    reason=refusal.reason,
                    **_kept(kept),
                )
                return Verdict(OutcomeStatus.REFUSED, refusal.reason)
        if not self.announced:
            # The first interaction this stream accepts: it begins as a new stream would.
            self._announce(meta, *_entry(interaction, policy, anonymous=self.anonymous))
        self._record_interaction(interaction, meta, kept)
        if self.anonymous:
            return _ACCEPTED  # visitors are not scored and move only by being linked
        raised = self._rescore(interaction, policy, meta)
        if move is not None:
            rule, target = move
            self._move(
                meta=meta,
                rule=rule.name,
                target=target,
                reason=_request_reason(interaction),
                interaction=interaction,
                policy=policy,
            )
        elif interaction.type not in REQUEST_TARGETS:
            self._advance(interaction, policy, meta)
        if raised:
            self._apply_score_rules(policy, meta)
        return _ACCEPTED

    def link_visitor(self, visitor: Lead, interaction: Interaction, policy: Policy) -> None:
        """Link a visitor to this lead: the lead takes over the visitor's touches and its
        recorded interaction ids; the visitor is marked merged into this lead.

        Raises ``MisroutedInteractionError`` when ``visitor`` is not an unmerged visitor or this
        lead is itself a visitor.
        """
        if not visitor.anonymous or visitor.merged_into is not None or self.anonymous:
            raise MisroutedInteractionError(f"cannot link {visitor.lead_key} into {self.lead_key}")
        anonymous_id = visitor.lead_key.removeprefix(ANONYMOUS_PREFIX)
        if not self.announced and visitor.touches:
            # The visitor was someone in the funnel; linked, that person is this lead now, even
            # when the interaction that identified them is refused.
            self._announce(
                _meta(self.lead_key, interaction, policy),
                self.stage,
                RULE_IDENTITY,
                f"anonymous id {anonymous_id} linked with its touches",
            )
        # A visitor may have thousands of touches (a crawler): one event carrying them all
        # could outgrow a Kafka message and stop the relay, so they come in bounded parts.
        touches = list(visitor.touches)
        ids = sorted(visitor.interaction_ids)
        size = LINKED_TOUCHES_PER_EVENT
        parts = max(1, -(-len(touches) // size), -(-len(ids) // size))
        for part in range(parts):
            self.trigger_event(
                Lead.IdentityLinked,
                **_meta(self.lead_key, interaction, policy),
                rule=RULE_IDENTITY,
                anonymous_id=anonymous_id,
                touches=touches[part * size : (part + 1) * size],
                interaction_ids=ids[part * size : (part + 1) * size],
                merged_into=None,
            )
        visitor.trigger_event(
            Lead.IdentityLinked,
            **_meta(visitor.lead_key, interaction, policy),
            rule=RULE_IDENTITY,
            anonymous_id=anonymous_id,
            touches=[],
            interaction_ids=[],
            merged_into=self.lead_key,
        )

    def _check_request(self, interaction: Interaction, policy: Policy) -> tuple[Rule, Stage] | None:
        """The move an explicit request asks for, None if it asks for none (a rejected
        qualification, or the stage the lead is already in); raises ``IllegalTransitionError``."""
        kind = interaction.type
        data = interaction.data
        if isinstance(data, QualificationRecorded) and not data.accepted:
            return None
        target = REQUEST_TARGETS[kind]
        current = self.stage
        where = f"policy {policy.name} {policy.version}"
        rule = policy.request_rule(kind)
        if target not in policy.stages or rule is None:
            raise StageNotInPolicyError(target.value, f"{where} has no {target} stage ({kind})")
        if current in policy.terminal:
            raise TerminalStageError(target.value, f"{current} is terminal; {kind} cannot move it")
        if current is target:
            return None
        if rule.from_stages is not None and current not in rule.from_stages:
            if rule.from_stages == {Stage.OPPORTUNITY}:
                needed = f"{kind} needs an open opportunity"
            else:
                needed = f"{kind} needs the lead in {' or '.join(sorted(rule.from_stages))}"
            raise RequirementsNotMetError(target.value, f"{needed}; the lead is in {current}")
        if isinstance(data, QualificationRecorded):
            missing = [r for r in sorted(rule.requires) if not getattr(data, r)]
            if missing:
                raise RequirementsNotMetError(
                    target.value,
                    f"sales accepted the lead but the qualification lacks {', '.join(missing)}, "
                    f"which {where} requires for {target}",
                )
        if not policy.allows(current, target):
            raise IllegalTransitionError(
                target.value, f"{where} does not allow {current} -> {target}"
            )
        return rule, target

    def erase_personal_data(
        self,
        *,
        at: datetime,
        policy: Policy,
        interactions: int,
        visitors: list[str],
        merged_into: str | None,
        reference: str | None,
    ) -> None:
        """Record that the stream's personal data was erased at ``at`` (its key destroyed by
        the application). Stages, score and touches do not change.

        A lead with more than ``ERASED_VISITORS_PER_EVENT`` merged visitors records the erasure
        in several events, each naming a part of them (``interactions`` on the first only), so
        that no event outgrows a Kafka message."""
        size = ERASED_VISITORS_PER_EVENT
        for part in range(max(1, -(-len(visitors) // size))):
            self.trigger_event(
                Lead.PersonalDataErased,
                lead_key=self.lead_key,
                occurred_at=at,
                interaction_id=None,
                rule=RULE_ERASED,
                policy_name=policy.name,
                policy_version=policy.version,
                interactions=interactions if part == 0 else 0,
                visitors=visitors[part * size : (part + 1) * size],
                merged_into=merged_into,
                reference=reference,
            )

    def _record_interaction(
        self, interaction: Interaction, meta: dict[str, Any], kept: InteractionRecord
    ) -> None:
        data = interaction.data
        profile: dict[str, str | int] = {}
        form_kind: str | None = None
        if isinstance(data, FormSubmitted):
            form_kind = data.form_kind._value_
            at = interaction.occurred_at
            for name, value in profile_of(data).items():
                known_at = self.profile_at.get(name)
                if known_at is None or at >= known_at:
                    profile[name] = value
        # ``_value_``: an enum member's value as a plain attribute (``.value`` is a property
        # call); the kept interaction's three attributes inline (as ``_kept`` gives them).
        self.trigger_event(
            Lead.InteractionRecorded,
            **meta,
            rule=RULE_RECORDED,
            interaction_type=interaction.type._value_,
            channel=interaction.channel._value_,
            campaign=interaction.campaign,
            form_kind=form_kind,
            sales_touch=interaction.is_sales_touch,
            profile=profile,
            interaction=kept.envelope,
            personal=list(kept.personal),
            sealed=kept.sealed,
        )

    def _rescore(self, interaction: Interaction, policy: Policy, meta: dict[str, Any]) -> bool:
        """Record the score change the interaction causes; True when it raised the score."""
        scoring = policy.scoring
        points, key = engagement_points(interaction, scoring)
        fit = (
            fit_score(self.profile, scoring)
            if isinstance(interaction.data, FormSubmitted)
            else self.fit
        )
        if points == 0 and fit == self.fit:
            return False
        engagement, as_of = engagement_after(
            self.engagement, self.engagement_as_of, points, interaction.occurred_at, scoring
        )
        score = round(fit + engagement, 4)
        previous = round(self.fit + self.engagement, 4)  # self.score
        fit_changed = fit != self.fit
        if score == previous and not fit_changed and engagement == self.engagement:
            return False
        if fit_changed:
            rule = f"fit+engagement:{key}" if key else "fit"
        else:
            rule = f"engagement:{key}" if key else ""
        self.trigger_event(
            Lead.ScoreChanged,
            **meta,
            rule=rule,
            previous_score=previous,
            score=score,
            fit=fit,
            engagement=engagement,
            engagement_as_of=as_of,
            temperature=temperature(score, scoring)._value_,
            previous_temperature=temperature(previous, scoring)._value_,
        )
        return score > previous

    def _advance(self, interaction: Interaction, policy: Policy, meta: dict[str, Any]) -> None:
        # The furthest legal move among the rules that match (ranked once per policy).
        for rule in policy.advancing_rules(interaction.type, self.stage):
            if rule.matches(interaction):
                self._move(
                    meta=meta,
                    rule=rule.name,
                    target=rule.to,
                    reason=f"{_describe(interaction)} matched rule {rule.name}",
                    interaction=interaction,
                    policy=policy,
                )
                return

    def _apply_score_rules(self, policy: Policy, meta: dict[str, Any]) -> None:
        for rule in policy.score_rules:
            threshold = rule.at_least if rule.at_least is not None else 0.0
            if self.score >= threshold and policy.allows(self.stage, rule.to):
                reason = f"score {self.score:g} reached {threshold:g}"
                self._move(
                    meta=meta,
                    rule=rule.name,
                    target=rule.to,
                    reason=reason,
                    interaction=None,
                    policy=policy,
                )

    def _move(
        self,
        *,
        meta: dict[str, Any],
        rule: str,
        target: Stage,
        reason: str,
        interaction: Interaction | None,
        policy: Policy,
    ) -> None:
        amount: float | None = None
        currency: str | None = None
        margin: float | None = None
        data = interaction.data if interaction is not None else None
        if isinstance(data, OpportunityOpened | DealWon):
            amount, currency = data.amount, data.currency
        if isinstance(data, DealWon):
            margin = data.margin if data.margin is not None else policy.default_margin
        # A late interaction cannot move the lead before it entered its current stage, or
        # stage timing would see negative durations.
        entered = self.stage_entered.get(self.stage_value)
        occurred_at = meta["occurred_at"]
        if entered is not None and entered > occurred_at:
            meta = {**meta, "occurred_at": entered}
        self.trigger_event(
            Lead.StageChanged,
            **meta,
            rule=rule,
            from_stage=self.stage_value,
            to_stage=target._value_,
            reason=reason,
            amount=amount,
            currency=currency,
            margin=margin,
        )

    # -- applying (no decisions, no raising, no clocks) ----------------------------------
    #
    # Events are triggered with ``trigger_event`` and applied by their class's ``apply``, which
    # calls the method below with the attributes it needs (positional, or the event's
    # ``__dict__`` itself; ``ScoreChanged`` assigns its three values itself): the same call now
    # and on every replay. (eventsourcing's ``@event`` decorator did this dispatch by filtering
    # every event attribute against the method's signature on each call, and its command methods
    # re-coerced every argument: with the dataclass ``__init__``, a third of an interaction's
    # cost.) The event classes are unchanged, so their topics and stored form are too.

    def _interaction_recorded(self, a: dict[str, Any]) -> None:
        """``a``: an ``InteractionRecorded``'s attributes (its ``__dict__``)."""
        occurred_at: datetime = a["occurred_at"]
        interaction_id: str | None = a["interaction_id"]
        if interaction_id is not None:
            self.interaction_ids.add(interaction_id)
        self.touch_count += 1
        self.last_occurred_at = max(self.last_occurred_at, occurred_at)
        self.first_occurred_at = min(self.first_occurred_at, occurred_at)
        if a["sales_touch"]:
            if self.first_sales_touch_at is None or occurred_at < self.first_sales_touch_at:
                self.first_sales_touch_at = occurred_at
            if self.last_sales_touch_at is None or occurred_at > self.last_sales_touch_at:
                self.last_sales_touch_at = occurred_at
        for name, value in a["profile"].items():
            self.profile[name] = value
            self.profile_at[name] = occurred_at
        if self.anonymous:
            self.touches.append(
                Touch(
                    interaction_id=interaction_id or "",
                    interaction_type=INTERACTION_TYPE_BY_VALUE[a["interaction_type"]],
                    occurred_at=occurred_at,
                    channel=CHANNEL_BY_VALUE[a["channel"]],
                    campaign=a["campaign"],
                )
            )
        self.policy_name = a["policy_name"]
        self.policy_version = a["policy_version"]

    def _stage_changed(self, occurred_at: datetime, from_stage: str | None, to_stage: str) -> None:
        if from_stage is None:
            # The announcement: the stream's first stage, whatever Registered assumed.
            self._announced = True
            self.stage_entered = {}
        self.stage_value = to_stage
        self.stage_entered[to_stage] = occurred_at

    def _transition_refused(self, *, interaction_id: str | None) -> None:
        if interaction_id is not None:
            self.interaction_ids.add(interaction_id)

    def _personal_data_erased(self, *, occurred_at: datetime) -> None:
        self._personal_data_erased_at = occurred_at

    def _identity_linked(
        self,
        *,
        touches: list[Touch],
        interaction_ids: list[str],
        anonymous_id: str,
        merged_into: str | None,
    ) -> None:
        if merged_into is not None:
            self.merged_into = merged_into
            return
        self.interaction_ids.update(interaction_ids)
        self.touch_count += len(touches)
        for touch in touches:
            self.first_occurred_at = min(self.first_occurred_at, touch.occurred_at)
        if anonymous_id not in self.linked_anonymous_ids:
            self.linked_anonymous_ids.append(anonymous_id)


@dataclass(frozen=True, slots=True)
class _EventSpec:
    """How ``_new_event`` lays out an event class's attributes."""

    fields: tuple[str, ...]
    """Every attribute, in the dataclass's field order (the order ``__init__`` sets them)."""
    content: tuple[str, ...]
    """The attributes the caller gives (all but the stream, version, time, topic and chain)."""
    defaults: dict[str, Any]
    """The defaults of the attributes that have one."""
    names: frozenset[str]
    """``content`` as a set."""
    given: frozenset[str]
    """The attributes besides ``content`` that a caller may give (a creation's topic)."""


_SPECS: dict[type[Any], _EventSpec] = {}
_GIVEN_ELSEWHERE = frozenset(
    {
        "originator_id",
        "originator_version",
        "timestamp",
        "originator_topic",
        "chain",
        "previous_chain",
    }
)


def _spec(event_class: type[Any]) -> _EventSpec:
    spec = _SPECS.get(event_class)
    if spec is None:
        fields = dataclasses.fields(event_class)
        defaults = {}
        for f in fields:
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                raise TypeError(f"{event_class.__qualname__}.{f.name}: no default factories")
        spec = _SPECS[event_class] = _EventSpec(
            tuple(f.name for f in fields),
            tuple(f.name for f in fields if f.name not in _GIVEN_ELSEWHERE),
            defaults,
            frozenset(f.name for f in fields if f.name not in _GIVEN_ELSEWHERE),
            frozenset(f.name for f in fields) & {"originator_topic"},
        )
    return spec


def _new_event(
    event_class: type[Any],
    originator_id: UUID,
    version: int,
    previous: str,
    kwargs: dict[str, Any],
    **given: Any,
) -> Any:
    """An event of ``event_class``, ``version`` of stream ``originator_id``, with the attributes
    ``kwargs`` (and those ``given``: the originator topic of a creation), recorded now unless
    ``kwargs`` has a ``timestamp``, chained to ``previous`` over its content (see
    ``chain_hash``: the recorded time and every attribute the caller gives). The object is
    what the class's ``__init__`` would make of the same values, built as eventsourcing's
    mapper revives a stored event; an attribute missing or unknown raises ``TypeError`` as
    ``__init__`` would."""
    spec = _SPECS.get(event_class) or _spec(event_class)
    timestamp = kwargs.pop("timestamp", None)
    if timestamp is None:
        timestamp = event_class.create_timestamp()
    if spec.defaults and len(kwargs) < len(spec.content):
        kwargs = {**spec.defaults, **kwargs}
    event_name = event_class.__name__
    if kwargs.keys() == spec.names and given.keys() <= spec.given:
        # Nearly always: every attribute given, and this format holds them. ``kwargs`` is
        # then the event's ``__dict__`` itself (a fresh dict: the caller's ``**``), with no
        # copy per step; the fields' order does not matter to an encoded event (its stored
        # state is ``STATE``), only to one in eventsourcing's format (the slow path).
        kwargs["timestamp"] = timestamp
        kwargs.update(given)
        encoded = encode_event(event_name, kwargs, originator_id, version, previous)
        if encoded is not None:
            kwargs["originator_id"] = originator_id
            kwargs["originator_version"] = version
            kwargs["chain"] = encoded[1]
            kwargs["previous_chain"] = previous
            kwargs[STATE] = encoded[0]
            new = object.__new__(event_class)
            object.__setattr__(new, "__dict__", kwargs)
            return new
        del kwargs["timestamp"]
        for name in given:
            del kwargs[name]
    content = {"timestamp": timestamp}
    try:
        for name in spec.content:
            content[name] = kwargs[name]
    except KeyError as missing:
        raise TypeError(f"{event_class.__qualname__} needs {missing}") from None
    if len(kwargs) != len(spec.content):
        unknown = sorted(set(kwargs) - set(spec.content))
        raise TypeError(f"{event_class.__qualname__} has no {', '.join(unknown)}")
    values = {**content, **given}
    encoded = encode_event(event_name, values, originator_id, version, previous)
    values["originator_id"] = originator_id
    values["originator_version"] = version
    values["chain"] = chain_hash(previous, event_name, content) if encoded is None else encoded[1]
    values["previous_chain"] = previous
    attributes = {field: values[field] for field in spec.fields}
    if encoded is not None:
        # The stored state, made once with the chain (``lifecycle.encoding``); taken out of
        # the event when it is stored (``lifecycle.application.stored_state``).
        attributes[STATE] = encoded[0]
    new = object.__new__(event_class)
    object.__setattr__(new, "__dict__", attributes)
    return new


def _kept(kept: InteractionRecord) -> dict[str, Any]:
    """The attributes of a stored event that keep the interaction (always all three, so that
    the chain hashes what is stored)."""
    return {
        "interaction": kept.envelope,
        "personal": list(kept.personal),
        "sealed": kept.sealed,
    }


def _meta(lead_key: str, interaction: Interaction, policy: Policy) -> dict[str, Any]:
    return {
        "lead_key": lead_key,
        "occurred_at": interaction.occurred_at,
        "interaction_id": interaction.id,
        "policy_name": policy.name,
        "policy_version": policy.version,
    }


def _entry(interaction: Interaction, policy: Policy, *, anonymous: bool) -> tuple[Stage, str, str]:
    """Where a person's stream begins, by which rule, and why."""
    if anonymous:
        return (
            policy.anonymous_entry,
            RULE_ANONYMOUS_TOUCH,
            f"anonymous id first seen ({interaction.type})",
        )
    if interaction.type not in REQUEST_TARGETS:
        # The furthest place among the rules that match (ranked once per policy).
        for rule in policy.entering_rules(interaction.type):
            if rule.matches(interaction):
                return rule.to, rule.name, f"{_describe(interaction)} matched rule {rule.name}"
    return policy.identified_entry, RULE_FIRST_TOUCH, f"first touch ({interaction.type})"


def _describe(interaction: Interaction) -> str:
    data = interaction.data
    if isinstance(data, FormSubmitted):
        return f"{interaction.type} ({data.form_kind})"
    if isinstance(data, EmailEngaged):
        return f"{interaction.type} ({data.action})"
    if isinstance(data, CallLogged):
        return f"{interaction.type} ({data.direction})"
    return interaction.type.value


def _request_reason(interaction: Interaction) -> str:
    data = interaction.data
    if isinstance(data, QualificationRecorded):
        established = [r for r in ("need", "budget", "authority", "timing") if getattr(data, r)]
        return f"sales accepted the qualification ({', '.join(established) or 'nothing'})"
    if isinstance(data, OpportunityOpened):
        return f"opportunity {data.opportunity_id} opened for {data.amount:g} {data.currency}"
    if isinstance(data, DealWon):
        return f"deal won for {data.amount:g} {data.currency}"
    if isinstance(data, DealLost):
        return f"deal lost: {data.reason}"
    if isinstance(data, Disqualified):
        return f"disqualified: {data.reason}"
    if isinstance(data, Recycled):
        return f"recycled: {data.reason}"
    return interaction.type.value
