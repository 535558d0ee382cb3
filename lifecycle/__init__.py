"""The domain: lifecycle policies, scoring, the Lead aggregate, identity resolution
(``lifecycle.identity``) and the lifecycle application.

Depends on ``contracts``, ``eventsourcing`` and ``cryptography`` (personal data is sealed with a
key per lead, ``lifecycle.personal``); no broker, no database driver.
"""

from lifecycle.application import LeadLifecycle, LeadView, Outcome, to_lifecycle_event
from lifecycle.errors import (
    IllegalTransitionError,
    LeadError,
    LeadNotFoundError,
    MisroutedInteractionError,
    PolicyError,
    RequirementsNotMetError,
    StageNotInPolicyError,
    TerminalStageError,
)
from lifecycle.lead import Lead, OutcomeStatus, Verdict, visitor_key
from lifecycle.policy import PRESETS, Policy, Rule, Scoring, Sla, Trigger, load_policy, parse_policy

__all__ = [
    "PRESETS",
    "IllegalTransitionError",
    "Lead",
    "LeadError",
    "LeadLifecycle",
    "LeadNotFoundError",
    "LeadView",
    "MisroutedInteractionError",
    "Outcome",
    "OutcomeStatus",
    "Policy",
    "PolicyError",
    "RequirementsNotMetError",
    "Rule",
    "Scoring",
    "Sla",
    "StageNotInPolicyError",
    "TerminalStageError",
    "Trigger",
    "Verdict",
    "load_policy",
    "parse_policy",
    "to_lifecycle_event",
    "visitor_key",
]
