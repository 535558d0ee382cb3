"""What a worker or a projector exposes on ``GET /metrics``, in Prometheus' text format.

Each process builds a ``CollectorRegistry`` of its own (never prometheus-client's global one,
so several workers in one process, or tests, do not collide) over the objects that already
count what they do: ``WorkerCounts``, ``RelayCounts``, ``ProjectorCounts``. The collectors read
them when scraped (on the event loop, like every other reader of those objects), so there is
one count of everything, not a second bookkeeping that could drift from it.

The lifecycle worker's process (``worker_registry``)::

    leadflow_interactions_total{outcome}            counter  accepted | duplicate | refused |
                                                             conflict | invalid | failed
    leadflow_interactions_late_total                counter  applied beyond the allowed lateness
    leadflow_interactions_late_max_seconds          gauge    the latest of them, by how much
    leadflow_worker_messages_total                  counter  messages handled (each once)
    leadflow_worker_messages_skipped_total          counter  handled before a rebalance
    leadflow_worker_batches_total                   counter  transactions committed
    leadflow_worker_write_conflicts_total           counter  batches retried on a conflict
    leadflow_worker_partitions                      gauge    partitions read now
    leadflow_worker_membership{state}               gauge    1 for joining | reading | standing_by
    leadflow_consumer_lag_messages{topic,partition} gauge    messages not yet applied
    leadflow_relay_events_total                     counter  lifecycle events relayed
    leadflow_relay_stage_changes_total              counter  stage changes relayed
    leadflow_relay_refusals_total                   counter  refusals relayed to rejected
    leadflow_relay_pages_total                      counter  pages acknowledged and recorded
    leadflow_relay_position                         gauge    last notification id recorded

The projector's (``projector_registry``)::

    leadflow_projector_lead_events_read_total       counter  lead-events messages read
    leadflow_projector_events_folded_total          counter  folded into the read models
    leadflow_projector_events_duplicate_total       counter  dropped as already folded
    leadflow_projector_spend_total{outcome}         counter  counted | duplicate
    leadflow_projector_dead_letters_total{reason}   counter  invalid | unfoldable | failed
    leadflow_projector_live                         gauge    1 once caught up
    leadflow_consumer_lag_messages{topic,partition} gauge    messages not yet folded

The deadline keeper's (``alerts_registry``, ``leadflow alerts``)::

    leadflow_sla_deadlines_pending                  gauge    open SLA deadlines (leads waiting)
    leadflow_sla_alerts_total{kind}                 counter  sla_warning | sla_breached published
    leadflow_sla_alert_lateness_seconds             gauge    published less due, last timed alert
    leadflow_alerts_lead_events_read_total          counter  lead-events messages read
    leadflow_alerts_dead_letters_total              counter  lead-events sent to rejected
    leadflow_alerts_live                            gauge    1 once caught up (fires on wall time)
    leadflow_consumer_lag_messages{topic,partition} gauge    messages not yet folded

The webhook deliverer's (``webhooks_registry``, ``leadflow webhooks``)::

    leadflow_webhook_deliveries_total{endpoint,outcome}  counter  delivered | dead_lettered |
                                                                  filtered (not for it)
    leadflow_webhook_failures_total{endpoint,reason}     counter  failed attempts: status |
                                                                  timeout | connection
    leadflow_webhook_pending{endpoint}                   gauge    events waiting for delivery
    leadflow_consumer_lag_messages{topic,partition}      gauge    messages not yet delivered

And all: prometheus-client's ``process_*`` (``process_resident_memory_bytes``,
``process_cpu_seconds_total``, open file descriptors, start time; on Linux).

The projector's counts are stored with its read models, so they go on from their stored values
after a restart (and from 0 after ``--rebuild``); the worker's and relay's start at 0 with the
process. Prometheus' ``rate()`` and ``increase()`` take both in their stride.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, ProcessCollector
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from streams.alerts import DeadlineKeeper
    from streams.projector import ProjectionState
    from streams.relay import Relay
    from streams.webhooks import WebhookDeliverer
    from streams.worker import LifecycleWorker

__all__ = [
    "CONTENT_TYPE",
    "AlertsCollector",
    "ProjectorCollector",
    "RelayCollector",
    "WebhooksCollector",
    "WorkerCollector",
    "alerts_registry",
    "exposition",
    "projector_registry",
    "webhooks_registry",
    "worker_registry",
]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The ``Content-Type`` of ``exposition``'s bytes: Prometheus' text format 0.0.4, which every
Prometheus and every scraper that speaks its format reads (every name here is a classic one)."""

LAG = "leadflow_consumer_lag_messages"
_LAG_HELP = (
    "Messages of a partition not yet applied (worker) or folded (projector): the partition's "
    "end offset as of the last fetch less the offset after the last one done."
)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _lag(lags: dict[tuple[str, int], int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(LAG, _LAG_HELP, labels=["topic", "partition"])
    for (topic, partition), lag in sorted(lags.items()):
        family.add_metric([topic, str(partition)], lag)
    return family


class WorkerCollector(Collector):
    """The lifecycle worker's counts, membership and lag, read when scraped."""

    def __init__(self, worker: LifecycleWorker) -> None:
        self._worker = worker

    def collect(self) -> Iterator[Metric]:
        """The worker's metrics as they stand now."""
        worker = self._worker
        c = worker.counts
        outcomes = CounterMetricFamily(
            "leadflow_interactions_total",
            "Interactions the lifecycle worker handled, by outcome: accepted (recorded), "
            "duplicate (id already recorded; nothing changed), refused (a move the policy "
            "forbids; the refusal is recorded), conflict (id recorded for another lead; "
            "rejected), invalid (broke the contract; dead-lettered), failed (the lifecycle "
            "raised on it; dead-lettered).",
            labels=["outcome"],
        )
        for outcome, value in (
            ("accepted", c.accepted),
            ("duplicate", c.duplicates),
            ("refused", c.refused),
            ("conflict", c.conflicting),
            ("invalid", c.invalid),
            ("failed", c.failed),
        ):
            outcomes.add_metric([outcome], value)
        yield outcomes
        yield _counter(
            "leadflow_interactions_late_total",
            "Interactions later than the allowed lateness, applied where their partition's "
            "watermark stood.",
            c.late,
        )
        yield _gauge(
            "leadflow_interactions_late_max_seconds",
            "By how much the latest late interaction was late.",
            c.late_seconds_max,
        )
        yield _counter(
            "leadflow_worker_messages_total",
            "Messages of the interactions topic the worker handled, each once.",
            c.messages,
        )
        yield _counter(
            "leadflow_worker_messages_skipped_total",
            "Messages read again after a rebalance and skipped (handled before).",
            c.skipped,
        )
        yield _counter(
            "leadflow_worker_batches_total",
            "Batches committed to the event store (one transaction each, with positions).",
            c.batches,
        )
        yield _counter(
            "leadflow_worker_write_conflicts_total",
            "Write conflicts (another worker wrote a lead or a partition first); each retries "
            "a batch.",
            c.conflicts,
        )
        lags = worker.lag()
        yield _gauge(
            "leadflow_worker_partitions",
            "Partitions of the interactions topic this worker reads now (0: standing by).",
            len(worker.order.sources),
        )
        membership = GaugeMetricFamily(
            "leadflow_worker_membership",
            "1 for where the worker stands in its consumer group: joining, reading (partitions "
            "assigned) or standing_by (another worker of the group reads).",
            labels=["state"],
        )
        for state in type(worker.membership):
            membership.add_metric([state.name.lower()], 1.0 if state is worker.membership else 0.0)
        yield membership
        yield _lag({(tp.topic, tp.partition): lag for tp, lag in lags.items()})


class RelayCollector(Collector):
    """The relay's counts and position, read when scraped."""

    def __init__(self, relay: Relay) -> None:
        self._relay = relay

    def collect(self) -> Iterator[Metric]:
        """The relay's metrics as they stand now."""
        c = self._relay.counts
        yield _counter(
            "leadflow_relay_events_total",
            "Lifecycle events published to lead-events and acknowledged by the broker.",
            c.events,
        )
        yield _counter(
            "leadflow_relay_stage_changes_total",
            "Stage changes published to stage-changes and acknowledged.",
            c.stage_changes,
        )
        yield _counter(
            "leadflow_relay_refusals_total",
            "Refused transitions published to the rejected topic and acknowledged.",
            c.refusals,
        )
        yield _counter(
            "leadflow_relay_pages_total",
            "Pages of the notification log published, acknowledged and recorded.",
            c.pages,
        )
        yield _gauge(
            "leadflow_relay_position",
            "Id of the last notification published and recorded.",
            c.position,
        )


class ProjectorCollector(Collector):
    """The projector's counts, readiness and lag, read when scraped."""

    def __init__(self, state: ProjectionState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        """The projector's metrics as they stand now."""
        state = self._state
        c = state.counts
        yield _counter(
            "leadflow_projector_lead_events_read_total",
            "Messages of lead-events the projector read (stored with the read models: they go "
            "on after a restart).",
            c.events,
        )
        yield _counter(
            "leadflow_projector_events_folded_total",
            "Lifecycle events folded into the read models (rate() of it: the fold rate).",
            c.applied,
        )
        yield _counter(
            "leadflow_projector_events_duplicate_total",
            "Lifecycle events dropped as already folded (the relay publishes at least once).",
            c.duplicates,
        )
        spend = CounterMetricFamily(
            "leadflow_projector_spend_total",
            "Spend records folded (counted) or dropped as already counted (duplicate).",
            labels=["outcome"],
        )
        spend.add_metric(["counted"], c.spend)
        spend.add_metric(["duplicate"], c.spend_duplicates)
        yield spend
        dead = CounterMetricFamily(
            "leadflow_projector_dead_letters_total",
            "Messages of lead-events and spend sent to the rejected topic, by reason: invalid "
            "(broke the contract), unfoldable (refused by the read models' fold guard), failed "
            "(a read model raised).",
            labels=["reason"],
        )
        dead.add_metric(["invalid"], c.invalid)
        dead.add_metric(["unfoldable"], c.unfoldable)
        dead.add_metric(["failed"], c.failed)
        yield dead
        yield _gauge(
            "leadflow_projector_live",
            "1 once the projector has folded everything that was on its topics when it "
            "started (its API answers), 0 while it rebuilds.",
            1.0 if state.live else 0.0,
        )
        yield _lag(state.partition_lag())


class AlertsCollector(Collector):
    """The deadline keeper's deadlines, alerts and lag, read when scraped."""

    def __init__(self, keeper: DeadlineKeeper) -> None:
        self._keeper = keeper

    def collect(self) -> Iterator[Metric]:
        """The keeper's metrics as they stand now."""
        keeper = self._keeper
        c = keeper.counts
        yield _gauge(
            "leadflow_sla_deadlines_pending",
            "Open SLA deadlines: leads in a stage with an SLA not yet touched by sales.",
            keeper.book.pending,
        )
        alerts = CounterMetricFamily(
            "leadflow_sla_alerts_total",
            "SLA alerts published to the alerts topic, by kind (sla_breached: deadlines breached).",
            labels=["kind"],
        )
        alerts.add_metric(["sla_warning"], c.warnings)
        alerts.add_metric(["sla_breached"], c.breaches)
        yield alerts
        yield _gauge(
            "leadflow_sla_alert_lateness_seconds",
            "Seconds between the last alert fired by the wall clock falling due and its "
            "publication being acknowledged.",
            c.lateness_seconds,
        )
        yield _counter(
            "leadflow_alerts_lead_events_read_total",
            "Messages of lead-events the deadline keeper read since it started.",
            c.events,
        )
        yield _counter(
            "leadflow_alerts_dead_letters_total",
            "Messages of lead-events the deadline keeper could not fold, sent to rejected.",
            c.invalid,
        )
        yield _gauge(
            "leadflow_alerts_live",
            "1 once the keeper has read lead-events to where it ended at start (it fires "
            "deadlines on the wall clock from then on).",
            1.0 if keeper.live else 0.0,
        )
        yield _lag(keeper.lag())


class WebhooksCollector(Collector):
    """The webhook deliverer's deliveries, failures and lag, read when scraped."""

    def __init__(self, deliverer: WebhookDeliverer) -> None:
        self._deliverer = deliverer

    def collect(self) -> Iterator[Metric]:
        """The deliverer's metrics as they stand now."""
        deliveries = CounterMetricFamily(
            "leadflow_webhook_deliveries_total",
            "Events per endpoint: delivered (a 2xx), dead_lettered (every attempt failed) or "
            "filtered (not an event the endpoint asked for).",
            labels=["endpoint", "outcome"],
        )
        failures = CounterMetricFamily(
            "leadflow_webhook_failures_total",
            "Failed delivery attempts per endpoint, by reason: status (not a 2xx), timeout, "
            "connection.",
            labels=["endpoint", "reason"],
        )
        pending = GaugeMetricFamily(
            "leadflow_webhook_pending",
            "Events read and not yet delivered or dead-lettered, per endpoint.",
            labels=["endpoint"],
        )
        for name, c in sorted(self._deliverer.counts.items()):
            deliveries.add_metric([name, "delivered"], c.delivered)
            deliveries.add_metric([name, "dead_lettered"], c.dead_lettered)
            deliveries.add_metric([name, "filtered"], c.filtered)
            for reason in ("status", "timeout", "connection"):
                failures.add_metric([name, reason], c.failures.get(reason, 0))
            pending.add_metric([name], c.pending)
        yield deliveries
        yield failures
        yield pending
        yield _lag(self._deliverer.lag())


def alerts_registry(keeper: DeadlineKeeper) -> CollectorRegistry:
    """A registry of its own over ``leadflow alerts``: the keeper's metrics and the process'."""
    registry = CollectorRegistry()
    registry.register(AlertsCollector(keeper))
    ProcessCollector(registry=registry)
    return registry


def webhooks_registry(deliverer: WebhookDeliverer) -> CollectorRegistry:
    """A registry of its own over ``leadflow webhooks``: its metrics and the process'."""
    registry = CollectorRegistry()
    registry.register(WebhooksCollector(deliverer))
    ProcessCollector(registry=registry)
    return registry


def worker_registry(worker: LifecycleWorker | None, relay: Relay | None) -> CollectorRegistry:
    """A registry of its own over a ``leadflow worker`` process: the lifecycle worker's and the
    relay's metrics (each if it runs) and the process' own."""
    registry = CollectorRegistry()
    if worker is not None:
        registry.register(WorkerCollector(worker))
    if relay is not None:
        registry.register(RelayCollector(relay))
    ProcessCollector(registry=registry)
    return registry


def projector_registry(state: ProjectionState) -> CollectorRegistry:
    """A registry of its own over a projector: its metrics and the process' own."""
    registry = CollectorRegistry()
    registry.register(ProjectorCollector(state))
    ProcessCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """Every metric of ``registry`` in Prometheus' text format (``CONTENT_TYPE``)."""
    return _generate_latest(registry)
