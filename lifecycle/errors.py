"""The lifecycle's errors, under one root.

Tree::

    LeadError                        anything the lifecycle refuses to do
    ├── PolicyError                  a policy file is invalid (names the TOML key path and problem)
    ├── LeadNotFoundError            no lead has this key
    ├── MisroutedInteractionError    an interaction handed to a lead it does not belong to
    ├── PersonalDataError            sealed personal data cannot be sealed or opened
    │   └── MasterKeyError           no master key, or not the one that wrapped the keys
    └── IllegalTransitionError       the policy forbids a requested move (recorded as a
        │                            TransitionRefused event; it never escapes ``process()``)
        ├── StageNotInPolicyError    the requested stage is not one of the policy's stages
        ├── TerminalStageError       the lead is in a terminal stage (customer)
        └── RequirementsNotMetError  the move needs something the lead lacks (an open
                                     opportunity, the SQL requirements)
"""

from __future__ import annotations


class LeadError(Exception):
    """Root of every error the lifecycle raises."""


class PolicyError(LeadError):
    """A policy file is invalid; the message starts with the TOML key path of the problem."""

    def __init__(self, key: str, problem: str, source: str | None = None) -> None:
        self.key = key
        self.problem = problem
        self.source = source
        where = f" (in {source})" if source else ""
        super().__init__(f"{key}: {problem}{where}")


class LeadNotFoundError(LeadError):
    """No lead (or visitor) has been recorded under this lead key."""

    def __init__(self, lead_key: str) -> None:
        self.lead_key = lead_key
        super().__init__(f"no lead {lead_key!r}")


class MisroutedInteractionError(LeadError):
    """An interaction was handed to a lead it does not belong to (a bug in the caller)."""


class PersonalDataError(LeadError):
    """Personal data cannot be sealed or opened (sealed values that do not open with their
    stream's key were altered)."""


class MasterKeyError(PersonalDataError):
    """No master key was given where one is needed, or it is not the key that wrapped the
    store's data keys; the message says which setting to check, never a key."""


class IllegalTransitionError(LeadError):
    """The policy forbids the requested move; ``reason`` says why in words for people."""

    def __init__(self, requested: str, reason: str) -> None:
        self.requested = requested
        self.reason = reason
        super().__init__(reason)


class StageNotInPolicyError(IllegalTransitionError):
    """The requested stage is not one of the policy's stages."""


class TerminalStageError(IllegalTransitionError):
    """The lead is in a terminal stage, which nothing leaves."""


class RequirementsNotMetError(IllegalTransitionError):
    """The move needs something the lead or the interaction lacks."""
