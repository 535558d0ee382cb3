"""The policy's ``[sla]`` keys for deadlines: warning fraction, sales touches, further stages,
each validated with the key path and the problem."""

from __future__ import annotations

import pytest

from contracts.vocabulary import InteractionType, Stage
from lifecycle.errors import PolicyError
from lifecycle.policy import DEFAULT_SALES_TOUCHES, DEFAULT_WARNING_FRACTION, parse_policy
from tests.unit.test_lifecycle_policy import VALID

SLA = "[sla]\nlead_first_touch_hours = 24\nmql_first_touch_hours = 4\n"


def sla(extra: str) -> str:
    assert SLA in VALID
    return VALID.replace(SLA, SLA + extra)


def test_the_defaults_when_the_policy_says_nothing_more() -> None:
    policy = parse_policy(VALID)
    assert policy.sla.warning_fraction == DEFAULT_WARNING_FRACTION
    assert policy.sla.sales_touches == DEFAULT_SALES_TOUCHES
    assert policy.sla.hours_for(Stage.LEAD) == 24.0
    assert policy.sla.hours_for(Stage.MQL) == 4.0
    assert policy.sla.hours_for(Stage.SQL) is None


def test_a_policy_sets_warnings_touches_and_more_stages() -> None:
    policy = parse_policy(
        sla(
            'warning_fraction = 0.5\nsales_touches = ["meeting_held", "email_engaged"]\n'
            "[sla.stages]\ncustomer = 48\n"
        )
    )
    assert policy.sla.warning_fraction == 0.5
    assert policy.sla.sales_touches == {
        InteractionType.MEETING_HELD,
        InteractionType.EMAIL_ENGAGED,
    }
    assert policy.sla.hours_for(Stage.CUSTOMER) == 48.0


def test_warnings_can_be_turned_off() -> None:
    assert parse_policy(sla("warning_fraction = false\n")).sla.warning_fraction is None


@pytest.mark.parametrize(
    ("extra", "key", "problem"),
    [
        ("warning_fraction = 1\n", "sla.warning_fraction", "between 0 and 1"),
        ("warning_fraction = 0\n", "sla.warning_fraction", "between 0 and 1"),
        ('warning_fraction = "x"\n', "sla.warning_fraction", "expected a number"),
        ('sales_touches = ["coffee"]\n', "sla.sales_touches[0]", "unknown"),
        ("sales_touches = []\n", "sla.sales_touches", "at least one"),
        ("[sla.stages]\ncustomer = 0\n", "sla.stages.customer", "greater than 0"),
        ("[sla.stages]\nsql = 3\n", "sla.stages.sql", "not one of the policy's stages"),
        ("[sla.stages]\nnowhere = 3\n", "sla.stages.nowhere", "unknown"),
        ("[sla.stages]\nmql = 3\n", "sla.stages.mql", "mql_first_touch_hours"),
        ("owner_field = 1\n", "sla.owner_field", "unknown key"),
    ],
)
def test_an_invalid_sla_key_is_named_with_its_problem(extra: str, key: str, problem: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(sla(extra), "tiny.toml")
    assert caught.value.key == key
    assert problem in caught.value.problem
