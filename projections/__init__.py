"""The read models as pure folds over lifecycle events: pipeline, stage timing, attribution,
funnel economics and accounts (B2B).

No Kafka, no I/O, no clock: the same objects run in faust agents, in a batch replay and in unit
tests. ``Projections`` drives all four over one ``LeadBook`` and makes the document served by
``leadflow replay --json`` and the HTTP API; each read model can also run on its own.
"""

from projections._common import MILESTONE_NAMES, MILESTONES, NONE
from projections.accounts import Accounts, MqaRule
from projections.attribution import (
    MODELS,
    RULE_MODELS,
    Attribution,
    first_touch_weights,
    last_touch_weights,
    linear_weights,
    markov_removal_effects,
    markov_shares,
    shapley_credit,
    shapley_values,
    time_decay_weights,
    u_shaped_weights,
    w_shaped_weights,
)
from projections.book import (
    BookTotals,
    LeadBook,
    LeadRecord,
    Stay,
    TouchRecord,
    UnfoldableEventError,
    fold_problems,
)
from projections.funnel import FunnelEconomics
from projections.money import (
    NO_CURRENCY,
    ExchangeRates,
    MissingRateError,
    RatesError,
    parse_rates,
)
from projections.pipeline import Pipeline
from projections.projections import SECTIONS, Projections
from projections.sla import SlaHours
from projections.timing import StageTiming

__all__ = [
    "MILESTONES",
    "MILESTONE_NAMES",
    "MODELS",
    "NONE",
    "NO_CURRENCY",
    "RULE_MODELS",
    "SECTIONS",
    "Accounts",
    "Attribution",
    "BookTotals",
    "ExchangeRates",
    "FunnelEconomics",
    "LeadBook",
    "LeadRecord",
    "MissingRateError",
    "MqaRule",
    "Pipeline",
    "Projections",
    "RatesError",
    "SlaHours",
    "StageTiming",
    "Stay",
    "TouchRecord",
    "UnfoldableEventError",
    "first_touch_weights",
    "fold_problems",
    "last_touch_weights",
    "linear_weights",
    "markov_removal_effects",
    "markov_shares",
    "parse_rates",
    "shapley_credit",
    "shapley_values",
    "time_decay_weights",
    "u_shaped_weights",
    "w_shaped_weights",
]
