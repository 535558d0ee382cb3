"""Lifecycle policies: versioned TOML files that say how leads move through the funnel.

A policy names its stages, the legal transitions between them, the rules that move a lead, how
leads are scored, what sales qualification requires, the default deal margin and the SLAs.
``load_policy("b2b_saas")`` loads a preset shipped with leadflow (``PRESETS``);
``load_policy("path/to/policy.toml")`` loads a file. Loading validates everything and raises
``PolicyError`` naming the TOML key path and the problem. The format, by example::

    [policy]
    name = "b2b_saas"                 # recorded in every lifecycle event with the version
    version = "1.0"                   # a string: "1.0", "2024-06", ...
    description = "..."               # optional

    [stages]
    funnel = ["visitor", "contact", "lead", "mql", "sql", "opportunity", "customer"]  # in order
    exits = ["disqualified", "lost"]  # side exits, off the funnel
    recycle = "recycled"              # optional: the one way back (nurture)
    terminal = ["customer"]           # stages nothing leaves
    anonymous_entry = "visitor"       # where a person known only by anonymous_id starts
    identified_entry = "contact"      # where an identified person starts (before the rules)

    [transitions]                     # from = [allowed targets]; funnel moves only go forward,
    lead = ["mql", "sql", "disqualified", "recycled"]   # exits lead only to recycle,
    recycled = ["lead", "disqualified"]                 # terminal stages lead nowhere

    [[rules]]                         # evaluated in order; names appear in the events
    name = "explicit_interest"
    trigger = "interaction"           # interaction (default): a matching interaction moves an
    on = ["form_submitted", "call_logged"]  # identified lead forward when the transition is
    to = "lead"                       # legal, and does nothing otherwise
    form_kinds = ["contact"]          # optional filters by form kind, email action, call
    email_actions = ["replied"]       # direction; each filter applies to its own type only
    call_directions = ["inbound"]

    [[rules]]
    name = "score_threshold"
    trigger = "score"                 # an interaction raised the score to at_least or more
    to = "mql"                        # (default: scoring.mql_threshold)

    [[rules]]
    name = "sales_accepted"
    trigger = "request"               # an explicit request (qualification, opportunity, deal,
    on = ["qualification_recorded"]   # disqualification, recycle): an illegal one is refused
    to = "sql"                        # and recorded as such
    requires = ["need", "budget", "authority"]   # qualification_recorded only
    from = ["opportunity"]            # optional: the only stages the request may come from

    [scoring]
    half_life_days = 30.0             # engagement halves every half-life (> 0)
    fit_cap = 40.0                    # caps (> 0, together at most 1,000,000)
    engagement_cap = 60.0
    mql_threshold = 50.0              # the default threshold of score rules

    [scoring.temperature]             # cold below warm, hot from hot (0 < warm < hot)
    warm = 25.0
    hot = 55.0

    [scoring.fit]                     # points per profile attribute from form submissions
    seniority = { "c-level" = 20, vp = 16, "*" = 0 }   # "*": any other value
    industry = { software = 10 }
    country = { us = 5, de = 5 }      # values match case-insensitively
    company_size = [{ at_least = 1, points = 0 }, { at_least = 50, points = 8 }]

    [scoring.engagement]              # points per interaction kind (may be negative)
    page_viewed = 1
    form_submitted = { demo_request = 30, "*" = 5 }   # per form kind
    email_engaged = { opened = 1, clicked = 3, replied = 10, unsubscribed = -15 }
    call_logged = { inbound = 10, outbound = 0 }      # per call direction

    [deals]
    default_margin = 0.4              # used when deal_won carries no margin (0..1)

    [sla]
    lead_first_touch_hours = 24.0     # first sales touch due after a lead is created
    mql_first_touch_hours = 4.0       # ... and after it became an MQL
    warning_fraction = 0.75           # optional (default 0.75): sla_warning after this share
                                      # of the time, 0 < f < 1; false: no warnings
    sales_touches = ["meeting_booked", "meeting_held", "qualification_recorded", "call_logged"]
                                      # optional (this default): interaction types that clear a
                                      # deadline; call_logged counts only when outbound
    stages = { sql = 48.0 }           # optional: SLA hours of further stages (not lead, mql)

    [attribution]                     # optional; every key has a default
    touch_types = ["page_viewed", "ad_clicked", "form_submitted", "email_engaged",
                   "call_logged", "meeting_booked", "meeting_held", "webinar_attended",
                   "account_created", "cart_created"]   # what counts as a touch (default:
                                      # every type but the CRM records of a decision)
    half_life_days = 7.0              # time_decay's half-life (> 0)

    [attribution.lookback_days]       # per milestone: touches more than this many days
    lead = 90                         # before the milestone get no credit (>= 0; inf: no
    mql = 90                          # limit); defaults: ``DEFAULT_LOOKBACK_DAYS``
    customer = 365

    [accounts]                        # optional (B2B): when an account is marketing-qualified
    mqa_engaged_people = 3            # 3 of its people engaged (touched at least once), or
    mqa_mql_people = 1                # 1 of them reached MQL, whichever first; 0 turns one off
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from contracts.interactions import CallLogged, EmailEngaged, FormSubmitted, Interaction
from contracts.lifecycle_events import PolicyRef
from contracts.types import MAX_SCORE
from contracts.vocabulary import (
    DEFAULT_TOUCH_TYPES,
    CallDirection,
    EmailAction,
    FormKind,
    InteractionType,
    Stage,
)
from lifecycle.errors import PolicyError

PRESETS: tuple[str, ...] = ("b2b_saas", "agency", "ecommerce")
"""The names of the policies shipped with leadflow (``lifecycle/presets/<name>.toml``)."""


class Trigger(StrEnum):
    """What makes a rule fire."""

    INTERACTION = "interaction"
    """A matching interaction moves an identified lead forward when the policy allows it."""
    SCORE = "score"
    """An interaction raised the lead's score to the rule's threshold or above."""
    REQUEST = "request"
    """An explicit request from sales or the CRM; refused (and recorded) when illegal."""


REQUEST_TARGETS: Mapping[InteractionType, Stage] = MappingProxyType(
    {
        InteractionType.QUALIFICATION_RECORDED: Stage.SQL,
        InteractionType.OPPORTUNITY_OPENED: Stage.OPPORTUNITY,
        InteractionType.DEAL_WON: Stage.CUSTOMER,
        InteractionType.DEAL_LOST: Stage.LOST,
        InteractionType.DISQUALIFIED: Stage.DISQUALIFIED,
        InteractionType.RECYCLED: Stage.RECYCLED,
    }
)
"""The stage each explicit request asks for, whatever the policy (which may lack it)."""

SQL_REQUIREMENTS: tuple[str, ...] = ("need", "budget", "authority", "timing")
"""What a qualification can establish; a policy requires some of them for SQL."""

ANY = "*"
"""The key that gives points to any value not listed (in fit and engagement tables)."""

_PER_VALUE: Mapping[InteractionType, type[StrEnum]] = {
    InteractionType.FORM_SUBMITTED: FormKind,
    InteractionType.EMAIL_ENGAGED: EmailAction,
    InteractionType.CALL_LOGGED: CallDirection,
}


@dataclass(frozen=True, slots=True)
class Rule:
    """A named rule that moves a lead to ``to`` (see ``Trigger`` for when)."""

    name: str
    trigger: Trigger
    to: Stage
    on: frozenset[InteractionType] = frozenset()
    form_kinds: frozenset[FormKind] | None = None
    email_actions: frozenset[EmailAction] | None = None
    call_directions: frozenset[CallDirection] | None = None
    at_least: float | None = None
    from_stages: frozenset[Stage] | None = None
    requires: frozenset[str] = frozenset()

    def matches(self, interaction: Interaction) -> bool:
        """True when the interaction is one of ``on`` and passes the rule's filters."""
        if interaction.type not in self.on:
            return False
        data = interaction.data
        if isinstance(data, FormSubmitted):
            return self.form_kinds is None or data.form_kind in self.form_kinds
        if isinstance(data, EmailEngaged):
            return self.email_actions is None or data.action in self.email_actions
        if isinstance(data, CallLogged):
            return self.call_directions is None or data.direction in self.call_directions
        return True


@dataclass(frozen=True, slots=True)
class SizeBand:
    """Fit points for a company of at least ``at_least`` employees."""

    at_least: int
    points: float


@dataclass(frozen=True, slots=True)
class Scoring:
    """How a lead is scored: fit (profile) plus engagement (decaying), each capped."""

    half_life_days: float
    fit_cap: float
    engagement_cap: float
    mql_threshold: float
    warm: float
    hot: float
    seniority: Mapping[str, float]
    industry: Mapping[str, float]
    country: Mapping[str, float]
    company_size: tuple[SizeBand, ...]
    engagement: Mapping[str, float]
    """Points by key: ``page_viewed``, ``form_submitted.demo_request``, ``form_submitted.*``."""
    _points: Mapping[tuple[InteractionType, StrEnum | None], tuple[float, str | None]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # The engagement points of every interaction type and sub-kind (form kind, email
        # action, call direction), looked up once per policy rather than per interaction.
        points: dict[tuple[InteractionType, StrEnum | None], tuple[float, str | None]] = {}
        for kind in InteractionType:
            for sub in (*_PER_VALUE.get(kind, ()), None):
                points[kind, sub] = self._look_up(kind, sub)
        object.__setattr__(self, "_points", MappingProxyType(points))

    def _look_up(self, kind: InteractionType, sub: StrEnum | None) -> tuple[float, str | None]:
        # The most specific key wins: kind.sub, then kind.*, then kind.
        table = self.engagement
        if sub is not None:
            for key in (f"{kind.value}.{sub.value}", f"{kind.value}.{ANY}"):
                found = table.get(key)
                if found is not None:
                    return found, key
        found = table.get(kind.value)
        if found is not None:
            return found, kind.value
        return 0.0, None

    def engagement_points(
        self, kind: InteractionType, sub: StrEnum | None
    ) -> tuple[float, str | None]:
        """The engagement points of an interaction of type ``kind`` whose form kind, email
        action or call direction is ``sub`` (None for other types), and the key that gave
        them; ``(0.0, None)`` when no key does (see ``lifecycle.scoring.engagement_points``)."""
        found = self._points.get((kind, sub))
        return self._look_up(kind, sub) if found is None else found


DEFAULT_SALES_TOUCHES: frozenset[InteractionType] = frozenset(
    {
        InteractionType.MEETING_BOOKED,
        InteractionType.MEETING_HELD,
        InteractionType.QUALIFICATION_RECORDED,
        InteractionType.CALL_LOGGED,
    }
)
"""The interaction types that clear an SLA deadline unless ``[sla] sales_touches`` says others
(an outbound call: ``call_logged`` counts only when the lifecycle flagged it a sales touch)."""

DEFAULT_WARNING_FRACTION = 0.75
"""The share of an SLA after which ``sla_warning`` fires unless ``[sla] warning_fraction`` says."""


@dataclass(frozen=True, slots=True)
class Sla:
    """How soon sales must first touch a lead (hours), counted from entering a stage.

    ``stages`` holds the SLAs of stages other than lead and mql; ``warning_fraction`` is the
    share of an SLA after which a warning fires (``None``: no warnings); ``sales_touches`` the
    interaction types that count as the touch that answers the SLA.
    """

    lead_first_touch_hours: float
    mql_first_touch_hours: float
    warning_fraction: float | None = DEFAULT_WARNING_FRACTION
    sales_touches: frozenset[InteractionType] = DEFAULT_SALES_TOUCHES
    stages: Mapping[Stage, float] = field(default_factory=lambda: MappingProxyType({}))

    def hours_for(self, stage: Stage) -> float | None:
        """The SLA of ``stage`` in hours, or ``None`` when the stage has none."""
        if stage is Stage.LEAD:
            return self.lead_first_touch_hours
        if stage is Stage.MQL:
            return self.mql_first_touch_hours
        return self.stages.get(stage)


MILESTONE_STAGES: tuple[Stage, ...] = (
    Stage.LEAD,
    Stage.MQL,
    Stage.SQL,
    Stage.OPPORTUNITY,
    Stage.CUSTOMER,
)
"""The milestones attribution credits, in funnel order."""

DEFAULT_LOOKBACK_DAYS: Mapping[str, float | None] = MappingProxyType(
    {"lead": 90.0, "mql": 90.0, "sql": 180.0, "opportunity": 180.0, "customer": 365.0}
)
"""Days before each milestone a touch may be and still be credited, unless the policy's
``[attribution.lookback_days]`` says otherwise: a quarter for the marketing milestones (the
window ad platforms and attribution tools offer by default), half a year for sales's, a year for
the won deal (a B2B sale takes months; a touch older than that rarely caused it)."""

DEFAULT_HALF_LIFE_DAYS = 7.0
"""time_decay's default half-life, in days."""


@dataclass(frozen=True, slots=True)
class AttributionSettings:
    """What attribution credits: which interaction types are touches, how far back from each
    milestone a touch still counts (``lookback_days``: milestone name -> days, ``None`` no limit)
    and time_decay's half-life."""

    touch_types: frozenset[InteractionType] = DEFAULT_TOUCH_TYPES
    lookback_days: Mapping[str, float | None] = field(default_factory=lambda: DEFAULT_LOOKBACK_DAYS)
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS


@dataclass(frozen=True, slots=True)
class AccountRules:
    """When an account (a company, B2B) is marketing-qualified (an MQA): as soon as
    ``mqa_engaged_people`` of its people have engaged (touched at least once), or
    ``mqa_mql_people`` of them have reached MQL, whichever comes first. A rule set to 0 is
    off; at least one is on. The policy's ``[accounts]`` table; absent, these defaults."""

    mqa_engaged_people: int = 3
    mqa_mql_people: int = 1


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated lifecycle policy. Build one with ``load_policy``."""

    name: str
    version: str
    description: str
    funnel: tuple[Stage, ...]
    exits: frozenset[Stage]
    recycle: Stage | None
    terminal: frozenset[Stage]
    anonymous_entry: Stage
    identified_entry: Stage
    transitions: Mapping[Stage, frozenset[Stage]]
    rules: tuple[Rule, ...]
    scoring: Scoring
    default_margin: float
    sla: Sla
    source: str = ""
    attribution: AttributionSettings = field(default_factory=AttributionSettings)
    accounts: AccountRules = AccountRules()
    stages: frozenset[Stage] = field(init=False)
    ref: PolicyRef = field(init=False)
    _by_type: Mapping[InteractionType, tuple[Rule, ...]] = field(init=False, repr=False)
    _requests: Mapping[InteractionType, Rule] = field(init=False, repr=False)
    _score_rules: tuple[Rule, ...] = field(init=False, repr=False)
    _rank: Mapping[Stage, int] = field(init=False, repr=False)
    _advancing: Mapping[tuple[InteractionType, Stage], tuple[Rule, ...]] = field(
        init=False, repr=False
    )
    _entering: Mapping[InteractionType, tuple[Rule, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        stages = frozenset(self.funnel) | self.exits
        if self.recycle is not None:
            stages |= {self.recycle}
        by_type: dict[InteractionType, list[Rule]] = {}
        for rule in self.rules:
            if rule.trigger is Trigger.INTERACTION:
                for kind in rule.on:
                    by_type.setdefault(kind, []).append(rule)
        requests = {
            kind: rule for rule in self.rules if rule.trigger is Trigger.REQUEST for kind in rule.on
        }
        set_ = object.__setattr__
        set_(self, "stages", stages)
        set_(self, "ref", PolicyRef(name=self.name, version=self.version))
        set_(self, "_by_type", MappingProxyType({k: tuple(v) for k, v in by_type.items()}))
        set_(self, "_requests", MappingProxyType(requests))
        set_(self, "_score_rules", tuple(r for r in self.rules if r.trigger is Trigger.SCORE))
        set_(self, "_rank", MappingProxyType({s: i for i, s in enumerate(self.funnel)}))

        # Which rules may move a lead, per interaction type and stage, computed once here
        # rather than filtered and ranked for every interaction: furthest stage first, policy
        # order among equals (a stable sort), so the first that matches is the one to apply.
        def furthest_first(rules: Iterable[Rule]) -> tuple[Rule, ...]:
            return tuple(sorted(rules, key=lambda r: -self._rank.get(r.to, -1)))

        entry = self.identified_entry
        set_(
            self,
            "_advancing",
            MappingProxyType(
                {
                    (kind, stage): furthest_first(r for r in rules if self.allows(stage, r.to))
                    for kind, rules in self._by_type.items()
                    for stage in stages
                }
            ),
        )
        set_(
            self,
            "_entering",
            MappingProxyType(
                {
                    kind: furthest_first(
                        r for r in rules if r.to is entry or self.allows(entry, r.to)
                    )
                    for kind, rules in self._by_type.items()
                }
            ),
        )

    def allows(self, from_stage: Stage, to_stage: Stage) -> bool:
        """True when the policy lists ``from_stage -> to_stage`` as a legal transition."""
        allowed = self.transitions.get(from_stage)
        return allowed is not None and to_stage in allowed

    def rank(self, stage: Stage) -> int | None:
        """The stage's position in the funnel (0 = first), or None for exits and recycle."""
        return self._rank.get(stage)

    def interaction_rules(self, kind: InteractionType) -> tuple[Rule, ...]:
        """The interaction rules listening to this interaction type, in policy order."""
        return self._by_type.get(kind, ())

    def advancing_rules(self, kind: InteractionType, stage: Stage) -> tuple[Rule, ...]:
        """The interaction rules for this type whose move is legal from ``stage``, furthest
        target first (in funnel rank; exits and recycle last), in policy order among equals:
        the first one an interaction matches is where it moves the lead."""
        return self._advancing.get((kind, stage), ())

    def entering_rules(self, kind: InteractionType) -> tuple[Rule, ...]:
        """The interaction rules for this type that may place a new identified lead (their
        target is the identified entry stage or a legal move from it), ordered as
        ``advancing_rules``."""
        return self._entering.get(kind, ())

    def request_rule(self, kind: InteractionType) -> Rule | None:
        """The request rule for an explicit request type (None if the policy has none)."""
        return self._requests.get(kind)

    @property
    def score_rules(self) -> tuple[Rule, ...]:
        """The rules that fire on the score, in policy order."""
        return self._score_rules

    @property
    def sql_requirements(self) -> frozenset[str]:
        """Which of need, budget, authority, timing a qualification must establish for SQL."""
        rule = self._requests.get(InteractionType.QUALIFICATION_RECORDED)
        return rule.requires if rule is not None else frozenset()


def load_policy(name_or_path: str | Path) -> Policy:
    """Load and validate a preset (by name, see ``PRESETS``) or a policy TOML file.

    Raises ``PolicyError`` (naming the key path and the problem) for anything invalid, an
    unreadable file or an unknown preset.
    """
    text: str
    source: str
    if isinstance(name_or_path, str) and name_or_path in PRESETS:
        source = f"preset {name_or_path}"
        text = (
            resources.files("lifecycle")
            .joinpath("presets", f"{name_or_path}.toml")
            .read_text(encoding="utf-8")
        )
    else:
        path = Path(name_or_path)
        source = str(path)
        if not path.is_file():
            known = ", ".join(PRESETS)
            raise PolicyError(
                "", f"no preset or file named {str(name_or_path)!r} (presets: {known})"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError("", f"cannot read the file: {exc}", source) from exc
    return parse_policy(text, source)


def parse_policy(text: str, source: str = "<string>") -> Policy:
    """Validate a policy given as TOML text; ``source`` names it in error messages."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError("", f"not valid TOML: {exc}", source) from exc
    return _Builder(source).build(raw)


_E = TypeVar("_E", bound=StrEnum)


class _Table:
    """A TOML table being read: remembers its key path and which keys were used."""

    def __init__(self, data: Mapping[str, Any], path: str, source: str) -> None:
        self.data = data
        self.path = path
        self.source = source
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, problem: str) -> PolicyError:
        return PolicyError(self.key(name), problem, self.source)

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str, expected: str) -> Any:
        self.used.add(name)
        if name not in self.data:
            raise self.error(name, f"missing (expected {expected})")
        return self.data[name]

    def table(self, name: str) -> _Table:
        value = self.raw(name, "a table")
        if not isinstance(value, dict):
            raise self.error(name, f"expected a table, got {_shown(value)}")
        return _Table(value, self.key(name), self.source)

    def string(self, name: str, default: str | None = None) -> str:
        if default is not None and name not in self.data:
            self.used.add(name)
            return default
        value = self.raw(name, "a string")
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, f"expected a non-empty string, got {_shown(value)}")
        return value

    def number(self, name: str, default: float | None = None) -> float:
        if default is not None and name not in self.data:
            self.used.add(name)
            return default
        return _number(self.raw(name, "a number"), self.key(name), self.source)

    def enum(self, name: str, enum: type[_E]) -> _E:
        value = self.raw(name, f"one of {_choices(enum)}")
        return _member(value, enum, self.key(name), self.source)

    def enums(self, name: str, enum: type[_E]) -> frozenset[_E]:
        value = self.raw(name, f"a list of {_choices(enum)}")
        if not isinstance(value, list):
            raise self.error(name, f"expected a list, got {_shown(value)}")
        return frozenset(
            _member(item, enum, f"{self.key(name)}[{i}]", self.source)
            for i, item in enumerate(value)
        )

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, key: str, problem: str) -> PolicyError:
        return PolicyError(key, problem, self.source)

    def build(self, raw: Mapping[str, Any]) -> Policy:
        root = _Table(raw, "", self.source)
        head = root.table("policy")
        name = head.string("name")
        version = head.string("version")
        description = head.string("description", "")
        head.finish()

        stages = root.table("stages")
        funnel_raw = stages.raw("funnel", "a list of stages in funnel order")
        if not isinstance(funnel_raw, list) or not funnel_raw:
            raise stages.error("funnel", f"expected a non-empty list, got {_shown(funnel_raw)}")
        funnel = tuple(
            _member(s, Stage, f"stages.funnel[{i}]", self.source) for i, s in enumerate(funnel_raw)
        )
        if len(set(funnel)) != len(funnel):
            raise stages.error("funnel", "a stage is listed twice")
        exits = stages.enums("exits", Stage) if stages.has("exits") else frozenset()
        if exits & set(funnel):
            both = ", ".join(sorted(exits & set(funnel)))
            raise stages.error("exits", f"{both} already in stages.funnel")
        recycle = stages.enum("recycle", Stage) if stages.has("recycle") else None
        if recycle is not None and (recycle in funnel or recycle in exits):
            raise stages.error("recycle", f"{recycle} is already in funnel or exits")
        known = set(funnel) | exits | ({recycle} if recycle else set())
        terminal = stages.enums("terminal", Stage)
        self._within(terminal, known, "stages.terminal")
        anonymous_entry = stages.enum("anonymous_entry", Stage)
        identified_entry = stages.enum("identified_entry", Stage)
        self._within({anonymous_entry}, known, "stages.anonymous_entry")
        self._within({identified_entry}, known, "stages.identified_entry")
        stages.finish()

        transitions = self._transitions(root.table("transitions"), funnel, exits, recycle, terminal)
        scoring = self._scoring(root.table("scoring"))
        rules = self._rules(root, known, scoring)
        self._requests_complete(rules, known)

        deals = root.table("deals")
        margin = deals.number("default_margin")
        if not 0 <= margin <= 1:
            raise deals.error("default_margin", f"expected a share between 0 and 1, got {margin}")
        deals.finish()

        sla = self._sla(root.table("sla"), known)
        attribution = self._attribution(root, known)
        accounts = self._accounts(root.table("accounts")) if root.has("accounts") else None
        root.finish()
        return Policy(
            name=name,
            version=version,
            description=description,
            funnel=funnel,
            exits=exits,
            recycle=recycle,
            terminal=terminal,
            anonymous_entry=anonymous_entry,
            identified_entry=identified_entry,
            transitions=transitions,
            rules=rules,
            scoring=scoring,
            default_margin=margin,
            sla=sla,
            source=self.source,
            attribution=attribution,
            accounts=AccountRules() if accounts is None else accounts,
        )

    def _sla(self, table: _Table, known: set[Stage]) -> Sla:
        lead_hours = self._positive(table, "lead_first_touch_hours")
        mql_hours = self._positive(table, "mql_first_touch_hours")
        warning: float | None = DEFAULT_WARNING_FRACTION
        if table.has("warning_fraction"):
            raw = table.raw("warning_fraction", "a share between 0 and 1, or false")
            if raw is False:
                warning = None
            else:
                warning = _number(raw, table.key("warning_fraction"), self.source)
                if not 0 < warning < 1:
                    raise table.error(
                        "warning_fraction",
                        f"expected a share between 0 and 1 (exclusive), or false, got {warning}",
                    )
        touches = (
            table.enums("sales_touches", InteractionType)
            if table.has("sales_touches")
            else DEFAULT_SALES_TOUCHES
        )
        if not touches:
            raise table.error("sales_touches", "expected at least one interaction type")
        stages: dict[Stage, float] = {}
        if table.has("stages"):
            extra = table.table("stages")
            for name in sorted(extra.data):
                stage = _member(name, Stage, extra.key(name), self.source)
                if stage not in known:
                    raise extra.error(name, f"{stage} is not one of the policy's stages")
                if stage in (Stage.LEAD, Stage.MQL):
                    raise extra.error(name, f"{stage}'s SLA is sla.{stage.value}_first_touch_hours")
                stages[stage] = self._positive(extra, name)
            extra.finish()
        table.finish()
        return Sla(
            lead_first_touch_hours=lead_hours,
            mql_first_touch_hours=mql_hours,
            warning_fraction=warning,
            sales_touches=touches,
            stages=MappingProxyType(stages),
        )

    def _accounts(self, table: _Table) -> AccountRules:
        defaults = AccountRules()
        engaged = self._count(table, "mqa_engaged_people", defaults.mqa_engaged_people)
        mql = self._count(table, "mqa_mql_people", defaults.mqa_mql_people)
        if not engaged and not mql:
            raise table.error(
                "mqa_engaged_people",
                "is 0 and so is accounts.mqa_mql_people (both 0): no account would qualify",
            )
        table.finish()
        return AccountRules(mqa_engaged_people=engaged, mqa_mql_people=mql)

    @staticmethod
    def _count(table: _Table, name: str, default: int) -> int:
        if not table.has(name):
            return default
        value = table.raw(name, "a whole number of people")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise table.error(
                name, f"expected a whole number of people (0 or more), got {_shown(value)}"
            )
        return value

    def _within(self, stages: Iterable[Stage], known: set[Stage], key: str) -> None:
        for stage in stages:
            if stage not in known:
                raise self.error(key, f"{stage} is not one of the policy's stages")

    def _positive(self, table: _Table, name: str, default: float | None = None) -> float:
        value = table.number(name, default)
        if value <= 0:
            raise table.error(name, f"must be greater than 0, got {value}")
        return value

    def _attribution(self, root: _Table, known: set[Stage]) -> AttributionSettings:
        if not root.has("attribution"):
            root.used.add("attribution")
            return AttributionSettings()
        table = root.table("attribution")
        touch_types = (
            table.enums("touch_types", InteractionType)
            if table.has("touch_types")
            else DEFAULT_TOUCH_TYPES
        )
        if not touch_types:
            raise table.error("touch_types", "expected at least one interaction kind")
        half_life = self._positive(table, "half_life_days", DEFAULT_HALF_LIFE_DAYS)
        lookback = dict(DEFAULT_LOOKBACK_DAYS)
        if table.has("lookback_days"):
            windows = table.table("lookback_days")
            names = {stage.value: stage for stage in MILESTONE_STAGES}
            for name in windows.data:
                if name not in names:
                    raise windows.error(
                        name, f"unknown milestone {name!r} (expected one of {', '.join(names)})"
                    )
                if names[name] not in known:
                    raise windows.error(name, f"{name} is not one of the policy's stages")
                value = windows.data[name]
                windows.used.add(name)
                # inf (TOML's own infinity) says "no limit"; anything else is a finite number.
                if isinstance(value, float) and value == math.inf:
                    lookback[name] = None
                    continue
                days = _number(value, windows.key(name), self.source)
                if days < 0:
                    raise windows.error(name, f"must be 0 or more days (inf: no limit), got {days}")
                lookback[name] = days
            windows.finish()
        table.finish()
        return AttributionSettings(
            touch_types=touch_types,
            lookback_days=MappingProxyType(lookback),
            half_life_days=half_life,
        )

    def _transitions(
        self,
        table: _Table,
        funnel: tuple[Stage, ...],
        exits: frozenset[Stage],
        recycle: Stage | None,
        terminal: frozenset[Stage],
    ) -> Mapping[Stage, frozenset[Stage]]:
        known = set(funnel) | exits | ({recycle} if recycle else set())
        rank = {s: i for i, s in enumerate(funnel)}
        result: dict[Stage, frozenset[Stage]] = {}
        for raw_from in table.data:
            key = table.key(raw_from)
            from_stage = _member(raw_from, Stage, key, self.source)
            if from_stage not in known:
                raise self.error(key, f"{from_stage} is not one of the policy's stages")
            targets = table.enums(raw_from, Stage)
            for to in sorted(targets):
                if to not in known:
                    raise self.error(key, f"transition to {to}, which is not in the policy")
                if from_stage in terminal:
                    raise self.error(key, f"{from_stage} is terminal; nothing may leave it")
                if to == from_stage:
                    raise self.error(key, f"{from_stage} -> {to} goes nowhere")
                if from_stage in rank and to in rank and rank[to] < rank[from_stage]:
                    raise self.error(
                        key, f"{from_stage} -> {to} moves backward; only {recycle} may lead back"
                    )
                if from_stage in exits and to != recycle:
                    raise self.error(
                        key, f"{from_stage} is an exit; it may only lead to the recycle stage"
                    )
            result[from_stage] = targets
        if recycle is not None and recycle not in result:
            raise self.error(table.key(recycle.value), "missing (where recycled leads may go)")
        return MappingProxyType(result)

    def _scoring(self, table: _Table) -> Scoring:
        half_life = table.number("half_life_days")
        if half_life <= 0:
            raise table.error("half_life_days", f"must be greater than 0, got {half_life}")
        fit_cap = self._positive(table, "fit_cap")
        engagement_cap = self._positive(table, "engagement_cap")
        if fit_cap + engagement_cap > MAX_SCORE:
            # Scores go on the wire, where they are bounded: a lead must never score beyond it.
            raise table.error(
                "engagement_cap",
                f"fit_cap + engagement_cap = {fit_cap + engagement_cap:g} exceeds the largest "
                f"score a lifecycle event may carry ({MAX_SCORE:,})",
            )
        mql_threshold = self._positive(table, "mql_threshold")
        if mql_threshold > fit_cap + engagement_cap:
            raise table.error(
                "mql_threshold",
                f"{mql_threshold} can never be reached (fit_cap + engagement_cap = "
                f"{fit_cap + engagement_cap})",
            )
        temperature = table.table("temperature")
        warm = self._positive(temperature, "warm")
        hot = self._positive(temperature, "hot")
        if not warm < hot:
            raise temperature.error("hot", f"thresholds out of order: warm {warm} >= hot {hot}")
        temperature.finish()

        fit = table.table("fit")
        seniority = self._points_by_value(fit, "seniority")
        industry = self._points_by_value(fit, "industry")
        country = self._points_by_value(fit, "country")
        bands = self._size_bands(fit)
        fit.finish()

        engagement = self._engagement(table.table("engagement"))
        table.finish()
        return Scoring(
            half_life_days=half_life,
            fit_cap=fit_cap,
            engagement_cap=engagement_cap,
            mql_threshold=mql_threshold,
            warm=warm,
            hot=hot,
            seniority=seniority,
            industry=industry,
            country=country,
            company_size=bands,
            engagement=engagement,
        )

    def _points_by_value(self, table: _Table, name: str) -> Mapping[str, float]:
        if not table.has(name):
            table.used.add(name)
            return MappingProxyType({})
        sub = table.table(name)
        points = {
            value.strip().lower(): _number(points, sub.key(value), self.source)
            for value, points in sub.data.items()
        }
        return MappingProxyType(points)

    def _size_bands(self, table: _Table) -> tuple[SizeBand, ...]:
        if not table.has("company_size"):
            table.used.add("company_size")
            return ()
        raw = table.raw("company_size", "a list of {at_least, points}")
        if not isinstance(raw, list):
            raise table.error("company_size", f"expected a list, got {_shown(raw)}")
        bands: list[SizeBand] = []
        for i, item in enumerate(raw):
            key = f"{table.key('company_size')}[{i}]"
            if not isinstance(item, dict):
                raise self.error(key, f"expected a table {{at_least, points}}, got {_shown(item)}")
            band = _Table(item, key, self.source)
            at_least = band.number("at_least")
            if at_least < 0 or at_least != int(at_least):
                raise band.error("at_least", f"expected a whole number >= 0, got {at_least}")
            points = band.number("points")
            band.finish()
            if bands and at_least <= bands[-1].at_least:
                raise band.error("at_least", "bands out of order (at_least must increase)")
            bands.append(SizeBand(int(at_least), points))
        return tuple(bands)

    def _engagement(self, table: _Table) -> Mapping[str, float]:
        points: dict[str, float] = {}
        for raw_kind, value in table.data.items():
            key = table.key(raw_kind)
            kind = _member(raw_kind, InteractionType, key, self.source, what="interaction kind")
            table.used.add(raw_kind)
            if isinstance(value, dict):
                per = _PER_VALUE.get(kind)
                if per is None:
                    raise self.error(key, f"expected a number ({kind} has no kinds), got a table")
                for raw_value, sub_points in value.items():
                    sub_key = f"{key}.{raw_value}"
                    if raw_value != ANY:
                        _member(raw_value, per, sub_key, self.source)
                    points[f"{kind}.{raw_value}"] = _number(sub_points, sub_key, self.source)
            else:
                points[kind.value] = _number(value, key, self.source)
        return MappingProxyType(points)

    def _rules(self, root: _Table, known: set[Stage], scoring: Scoring) -> tuple[Rule, ...]:
        raw = root.raw("rules", "an array of [[rules]] tables")
        if not isinstance(raw, list):
            raise root.error("rules", f"expected an array of tables, got {_shown(raw)}")
        rules: list[Rule] = []
        names: set[str] = set()
        for i, item in enumerate(raw):
            key = f"rules[{i}]"
            if not isinstance(item, dict):
                raise self.error(key, f"expected a table, got {_shown(item)}")
            table = _Table(item, key, self.source)
            rule = self._rule(table, known, scoring)
            table.finish()
            if rule.name in names:
                raise table.error("name", f"{rule.name!r} is used by an earlier rule")
            names.add(rule.name)
            rules.append(rule)
        return tuple(rules)

    def _rule(self, table: _Table, known: set[Stage], scoring: Scoring) -> Rule:
        name = table.string("name")
        trigger = table.enum("trigger", Trigger) if table.has("trigger") else Trigger.INTERACTION
        to = table.enum("to", Stage)
        if to not in known:
            raise table.error("to", f"{to} is not one of the policy's stages")
        if trigger is Trigger.SCORE:
            at_least = self._positive(table, "at_least", scoring.mql_threshold)
            if at_least > scoring.fit_cap + scoring.engagement_cap:
                raise table.error("at_least", f"{at_least} can never be reached")
            return Rule(name=name, trigger=trigger, to=to, at_least=at_least)
        on = table.enums("on", InteractionType)
        if not on:
            raise table.error("on", "expected at least one interaction kind")
        if trigger is Trigger.INTERACTION:
            for kind in sorted(on):
                if kind in REQUEST_TARGETS:
                    raise table.error(
                        "on", f'{kind} is an explicit request; use trigger = "request"'
                    )
            return Rule(
                name=name,
                trigger=trigger,
                to=to,
                on=on,
                form_kinds=table.enums("form_kinds", FormKind) if table.has("form_kinds") else None,
                email_actions=table.enums("email_actions", EmailAction)
                if table.has("email_actions")
                else None,
                call_directions=table.enums("call_directions", CallDirection)
                if table.has("call_directions")
                else None,
            )
        if len(on) != 1:
            raise table.error("on", "a request rule listens to exactly one interaction kind")
        (kind,) = on
        target = REQUEST_TARGETS.get(kind)
        if target is None:
            raise table.error("on", f"{kind} is not an explicit request")
        if to != target:
            raise table.error("to", f"{kind} always requests {target}, not {to}")
        from_stages = table.enums("from", Stage) if table.has("from") else None
        if from_stages is not None:
            self._within(from_stages, known, table.key("from"))
        requires: frozenset[str] = frozenset()
        if table.has("requires"):
            if kind is not InteractionType.QUALIFICATION_RECORDED:
                raise table.error("requires", "only qualification_recorded has requirements")
            value = table.raw("requires", "a list")
            if not isinstance(value, list) or any(v not in SQL_REQUIREMENTS for v in value):
                raise table.error(
                    "requires", f"expected a list of {', '.join(SQL_REQUIREMENTS)}, got {value!r}"
                )
            requires = frozenset(value)
        return Rule(
            name=name,
            trigger=trigger,
            to=to,
            on=on,
            from_stages=from_stages,
            requires=requires,
        )

    def _requests_complete(self, rules: tuple[Rule, ...], known: set[Stage]) -> None:
        covered: set[InteractionType] = set()
        for i, rule in enumerate(rules):
            if rule.trigger is Trigger.REQUEST:
                (kind,) = rule.on
                if kind in covered:
                    raise self.error(f"rules[{i}].on", f"another request rule handles {kind}")
                covered.add(kind)
        for kind, target in REQUEST_TARGETS.items():
            if target in known and kind not in covered:
                raise self.error(
                    "rules",
                    f"no request rule for {kind}, although {target} is one of the stages",
                )


def _number(value: Any, key: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PolicyError(key, f"expected a number, got {_shown(value)}", source)
    return float(value)


def _member(value: Any, enum: type[_E], key: str, source: str, what: str | None = None) -> _E:
    try:
        return enum(value)
    except ValueError:
        label = what or enum.__name__.lower()
        raise PolicyError(
            key, f"unknown {label} {_shown(value)} (expected one of {_choices(enum)})", source
        ) from None


def _choices(enum: type[StrEnum]) -> str:
    return ", ".join(m.value for m in enum)


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)
