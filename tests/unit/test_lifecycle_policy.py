"""Loading policies: the presets load; every invalid policy is refused with a ``PolicyError`` that
names the TOML key path and the problem."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.interactions import Interaction
from contracts.vocabulary import InteractionType, Stage
from lifecycle.errors import LeadError, PolicyError
from lifecycle.policy import PRESETS, Policy, Rule, Trigger, load_policy, parse_policy
from tests.unit.examples import interactions

VALID = """
[policy]
name = "tiny"
version = "2025-03"

[stages]
funnel = ["visitor", "contact", "lead", "mql", "customer"]
exits = ["disqualified"]
recycle = "recycled"
terminal = ["customer"]
anonymous_entry = "visitor"
identified_entry = "contact"

[transitions]
visitor = ["contact", "lead"]
contact = ["lead", "mql", "disqualified"]
lead = ["mql", "disqualified", "recycled"]
mql = ["customer", "disqualified", "recycled"]
disqualified = ["recycled"]
recycled = ["lead"]

[[rules]]
name = "interest"
to = "lead"
on = ["form_submitted"]
form_kinds = ["contact"]

[[rules]]
name = "score_threshold"
trigger = "score"
to = "mql"

[[rules]]
name = "won"
trigger = "request"
on = ["deal_won"]
to = "customer"
from = ["mql"]

[[rules]]
name = "disqualified"
trigger = "request"
on = ["disqualified"]
to = "disqualified"

[[rules]]
name = "recycled"
trigger = "request"
on = ["recycled"]
to = "recycled"

[scoring]
half_life_days = 10
fit_cap = 20
engagement_cap = 80
mql_threshold = 50

[scoring.temperature]
warm = 20
hot = 60

[scoring.fit]
seniority = { vp = 10, "*" = 1 }
company_size = [{ at_least = 1, points = 0 }, { at_least = 100, points = 5 }]

[scoring.engagement]
page_viewed = 1
form_submitted = { contact = 20, "*" = 5 }

[deals]
default_margin = 0.25

[sla]
lead_first_touch_hours = 24
mql_first_touch_hours = 4
"""


def with_change(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new, 1)


def test_a_valid_policy_loads_with_everything_it_says() -> None:
    policy = parse_policy(VALID)
    assert (policy.name, policy.version) == ("tiny", "2025-03")
    assert policy.stages == {
        Stage.VISITOR,
        Stage.CONTACT,
        Stage.LEAD,
        Stage.MQL,
        Stage.CUSTOMER,
        Stage.DISQUALIFIED,
        Stage.RECYCLED,
    }
    assert policy.allows(Stage.CONTACT, Stage.MQL)
    assert not policy.allows(Stage.MQL, Stage.LEAD)
    assert policy.terminal == {Stage.CUSTOMER}
    assert [r.name for r in policy.interaction_rules(InteractionType.FORM_SUBMITTED)] == [
        "interest"
    ]
    assert [(r.name, r.at_least) for r in policy.score_rules] == [("score_threshold", 50.0)]
    won = policy.request_rule(InteractionType.DEAL_WON)
    assert won is not None
    assert (won.trigger, won.from_stages) == (Trigger.REQUEST, frozenset({Stage.MQL}))
    assert policy.scoring.engagement["form_submitted.*"] == 5.0
    assert policy.default_margin == 0.25
    assert (policy.sla.lead_first_touch_hours, policy.sla.mql_first_touch_hours) == (24.0, 4.0)


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads_by_name(name: str) -> None:
    policy = load_policy(name)
    assert policy.name == name
    assert policy.version
    assert policy.ref.name == name


def test_a_policy_file_loads_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(VALID, encoding="utf-8")
    assert load_policy(path).name == "tiny"
    assert load_policy(str(path)).source == str(path)


def test_a_policy_is_frozen() -> None:
    policy = parse_policy(VALID)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.name = "other"  # type: ignore[misc]
    assert isinstance(policy, Policy)


def test_b2b_saas_requires_need_budget_and_authority_for_sql() -> None:
    assert load_policy("b2b_saas").sql_requirements == {"need", "budget", "authority"}


def test_an_unknown_preset_or_missing_file_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="no preset or file named 'nope'"):
        load_policy("nope")


def test_policy_errors_are_lead_errors() -> None:
    assert issubclass(PolicyError, LeadError)


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        ('version = "2025-03"\n', "", "policy.version", "missing"),
        ('version = "2025-03"', "version = 3", "policy.version", "expected a non-empty string"),
        ('name = "tiny"', 'name = "tiny"\nowner = "me"', "policy.owner", "unknown key"),
        (
            '"lead", "mql", "customer"]',
            '"lead", "mqll", "customer"]',
            "stages.funnel[3]",
            "unknown stage 'mqll'",
        ),
        ('terminal = ["customer"]', 'terminal = ["sql"]', "stages.terminal", "sql is not one"),
        (
            'identified_entry = "contact"',
            'identified_entry = "opportunity"',
            "stages.identified_entry",
            "not one of the policy's stages",
        ),
        (
            'lead = ["mql", "disqualified", "recycled"]',
            'lead = ["sql", "disqualified", "recycled"]',
            "transitions.lead",
            "transition to sql, which is not in the policy",
        ),
        (
            'mql = ["customer", "disqualified", "recycled"]',
            'mql = ["lead", "customer"]',
            "transitions.mql",
            "mql -> lead moves backward; only recycled may lead back",
        ),
        (
            'disqualified = ["recycled"]',
            'disqualified = ["lead"]',
            "transitions.disqualified",
            "it may only lead to the recycle stage",
        ),
        (
            'recycled = ["lead"]',
            'recycled = ["lead"]\ncustomer = ["recycled"]',
            "transitions.customer",
            "customer is terminal",
        ),
        ('recycled = ["lead"]\n', "", "transitions.recycled", "missing"),
        (
            'to = "lead"\non = ["form_submitted"]',
            'to = "won"\non = ["form_submitted"]',
            "rules[0].to",
            "unknown stage 'won'",
        ),
        (
            'on = ["form_submitted"]',
            'on = ["form_sent"]',
            "rules[0].on[0]",
            "unknown interactiontype 'form_sent'",
        ),
        (
            'form_kinds = ["contact"]',
            'form_kinds = ["call_me"]',
            "rules[0].form_kinds[0]",
            "call_me",
        ),
        (
            'on = ["form_submitted"]',
            'on = ["deal_won"]',
            "rules[0].on",
            'deal_won is an explicit request; use trigger = "request"',
        ),
        (
            'on = ["deal_won"]\nto = "customer"',
            'on = ["deal_won"]\nto = "mql"',
            "rules[2].to",
            "deal_won always requests customer, not mql",
        ),
        ('name = "won"', 'name = "interest"', "rules[2].name", "used by an earlier rule"),
        (
            'on = ["recycled"]\nto = "recycled"',
            'on = ["disqualified"]\nto = "disqualified"',
            "rules[4].on",
            "another request rule handles disqualified",
        ),
        (
            'name = "disqualified"\ntrigger = "request"\non = ["disqualified"]\n'
            'to = "disqualified"\n',
            'name = "disqualified"\ntrigger = "score"\nto = "disqualified"\nat_least = 999\n',
            "rules[3].at_least",
            "can never be reached",
        ),
        ('trigger = "score"', 'trigger = "sometimes"', "rules[1].trigger", "unknown trigger"),
        ("half_life_days = 10", "half_life_days = -3", "scoring.half_life_days", "greater than 0"),
        ("half_life_days = 10", "half_life_days = 0", "scoring.half_life_days", "greater than 0"),
        ("half_life_days = 10", 'half_life_days = "ten"', "scoring.half_life_days", "a number"),
        ("fit_cap = 20\n", "", "scoring.fit_cap", "missing"),
        (
            "mql_threshold = 50",
            "mql_threshold = 150",
            "scoring.mql_threshold",
            "150.0 can never be reached (fit_cap + engagement_cap = 100.0)",
        ),
        ("hot = 60", "hot = 10", "scoring.temperature.hot", "thresholds out of order"),
        (
            "fit_cap = 20\n",
            "fit_cap = 1e300\n",
            "scoring.engagement_cap",
            "exceeds the largest score a lifecycle event may carry (1,000,000)",
        ),
        (
            "page_viewed = 1",
            "page_veiwed = 1",
            "scoring.engagement.page_veiwed",
            "unknown interaction kind 'page_veiwed'",
        ),
        (
            "contact = 20,",
            "contact_us = 20,",
            "scoring.engagement.form_submitted.contact_us",
            "unknown formkind",
        ),
        ("page_viewed = 1", "page_viewed = { x = 1 }", "scoring.engagement.page_viewed", "table"),
        ("vp = 10", "vp = true", "scoring.fit.seniority.vp", "expected a number"),
        (
            "{ at_least = 100, points = 5 }",
            "{ at_least = 1, points = 5 }",
            "scoring.fit.company_size[1].at_least",
            "out of order",
        ),
        (
            "default_margin = 0.25",
            "default_margin = 1.5",
            "deals.default_margin",
            "between 0 and 1",
        ),
        (
            "mql_first_touch_hours = 4",
            "mql_first_touch_hours = 0",
            "sla.mql_first_touch_hours",
            "greater than 0",
        ),
        (
            'name = "won"\ntrigger = "request"\non = ["deal_won"]\n'
            'to = "customer"\nfrom = ["mql"]\n',
            'name = "won"\ntrigger = "interaction"\non = ["page_viewed"]\nto = "lead"\n',
            "rules",
            "no request rule for deal_won, although customer is one of the stages",
        ),
    ],
)
def test_an_invalid_policy_names_the_key_and_the_problem(
    old: str, new: str, key: str, problem: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(with_change(old, new), "tiny.toml")
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{key}: ")
    assert "tiny.toml" in str(caught.value)


def test_invalid_toml_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="not valid TOML"):
        parse_policy("[policy\nname = 1")


def test_the_account_rules_default_when_the_policy_has_no_accounts_table() -> None:
    assert parse_policy(VALID).accounts.mqa_engaged_people == 3
    assert parse_policy(VALID).accounts.mqa_mql_people == 1
    assert load_policy("b2b_saas").accounts.mqa_engaged_people == 3


def test_the_accounts_table_sets_the_mqa_rule() -> None:
    policy = parse_policy(VALID + "\n[accounts]\nmqa_engaged_people = 4\nmqa_mql_people = 0\n")

    assert (policy.accounts.mqa_engaged_people, policy.accounts.mqa_mql_people) == (4, 0)


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        ("mqa_engaged_people = -1", "accounts.mqa_engaged_people", "0 or more), got -1"),
        ("mqa_engaged_people = 2.5", "accounts.mqa_engaged_people", "got 2.5"),
        ("mqa_engaged_people = true", "accounts.mqa_engaged_people", "got True"),
        ('mqa_mql_people = "one"', "accounts.mqa_mql_people", "got 'one'"),
        ("mqa_engaged_people = 0\nmqa_mql_people = 0", "accounts.mqa_engaged_people", "both 0"),
        ("mqa_score = 100", "accounts.mqa_score", "unknown key"),
    ],
)
def test_a_bad_accounts_table_names_the_key(table: str, key: str, problem: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(VALID + f"\n[accounts]\n{table}\n")

    assert caught.value.key == key
    assert problem in str(caught.value)


def _furthest_by_scan(
    policy: Policy, interaction: Interaction, allowed: Callable[[Stage], bool]
) -> Rule | None:
    """The rule the lead used to choose by scanning every rule for each interaction: the
    first, in policy order, of the matching rules with the furthest target."""
    best: Rule | None = None
    best_rank = -1
    for rule in policy.interaction_rules(interaction.type):
        if allowed(rule.to) and rule.matches(interaction):
            rank = policy.rank(rule.to)
            rank = -1 if rank is None else rank
            if best is None or rank > best_rank:
                best, best_rank = rule, rank
    return best


def _overlapping() -> Policy:
    """b2b_saas with rules that match the same interactions as its own, to nearer, further
    and equal stages, listed before and after them (the presets' rules never overlap)."""
    preset = load_policy("b2b_saas")
    every = frozenset(InteractionType)
    extra_before = (
        Rule("any_to_contact", Trigger.INTERACTION, Stage.CONTACT, on=every),
        Rule(
            "any_form_to_mql",
            Trigger.INTERACTION,
            Stage.MQL,
            on=frozenset({InteractionType.FORM_SUBMITTED}),
        ),
    )
    extra_after = (
        Rule("any_to_lead", Trigger.INTERACTION, Stage.LEAD, on=every),
        Rule("any_to_mql", Trigger.INTERACTION, Stage.MQL, on=every),
        Rule("any_out", Trigger.INTERACTION, Stage.DISQUALIFIED, on=every),
    )
    return dataclasses.replace(preset, rules=(*extra_before, *preset.rules, *extra_after))


_POLICIES = {**{name: load_policy(name) for name in PRESETS}, "overlapping": _overlapping()}


@settings(max_examples=300, deadline=None)
@given(interaction=interactions(), name=st.sampled_from(sorted(_POLICIES)))
def test_the_rules_ranked_once_per_policy_choose_as_a_scan_of_every_rule(
    interaction: Interaction, name: str
) -> None:
    policy = _POLICIES[name]
    for stage in sorted(policy.stages):
        ranked = policy.advancing_rules(interaction.type, stage)
        chosen = next((r for r in ranked if r.matches(interaction)), None)
        assert chosen == _furthest_by_scan(policy, interaction, partial(policy.allows, stage))
    entry = policy.identified_entry
    entering = policy.entering_rules(interaction.type)
    chosen = next((r for r in entering if r.matches(interaction)), None)
    assert chosen == _furthest_by_scan(
        policy, interaction, lambda to: to is entry or policy.allows(entry, to)
    )
