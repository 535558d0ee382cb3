"""What ``GET /metrics`` says: given known counts, positions and ends of the worker, the relay
and the projector, the exposition holds those very numbers under Prometheus' names, with help
text, and the process' own RSS and CPU; every process' registry is its own."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from contracts import Topics
from leadflow.runtime import open_lifecycle
from leadflow.settings import EventStoreKind, Settings
from streams.connection import KafkaConnection
from streams.metrics import exposition, projector_registry, worker_registry
from streams.projector import ProjectionState, ProjectorCounts
from streams.readiness import Membership
from streams.relay import Relay
from streams.worker import LifecycleWorker

TOPIC = "p.leadflow.interactions.v1"


class FakeConsumer:
    """What the worker asks its consumer when scraped: what is assigned, and each highwater."""

    def __init__(self, highwater: dict[TopicPartition, int | None]) -> None:
        self._highwater = highwater

    def assignment(self) -> set[TopicPartition]:
        return set(self._highwater)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self._highwater[tp]


def scrape(registry: Any) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """``{sample name: {sorted labels: value}}`` of a registry's exposition, parsed back."""
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    text = exposition(registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def helps(registry: Any) -> dict[str, str]:
    text = exposition(registry).decode()
    return {f.name: f.documentation for f in text_string_to_metric_families(text)}


def _worker() -> LifecycleWorker:
    app: Any = object()  # the collector never touches the lifecycle
    return LifecycleWorker(app, KafkaConnection("127.0.0.1:1"), Topics(prefix="p."))


def _relay() -> Relay:
    app = open_lifecycle(Settings(event_store=EventStoreKind.MEMORY))
    return Relay(app, KafkaConnection("127.0.0.1:1"), Topics(prefix="p."))


def test_the_worker_counts_are_exposed_under_their_names_with_their_values() -> None:
    worker = _worker()
    c = worker.counts
    c.accepted, c.duplicates, c.refused, c.conflicting, c.invalid, c.failed = 17, 5, 3, 2, 7, 1
    c.messages, c.skipped, c.batches, c.conflicts = 35, 4, 6, 9
    c.late, c.late_seconds_max = 8, 42.5

    metrics = scrape(worker_registry(worker, None))

    assert metrics["leadflow_interactions_total"] == {
        (("outcome", "accepted"),): 17,
        (("outcome", "duplicate"),): 5,
        (("outcome", "refused"),): 3,
        (("outcome", "conflict"),): 2,
        (("outcome", "invalid"),): 7,
        (("outcome", "failed"),): 1,
    }
    assert metrics["leadflow_interactions_late_total"] == {(): 8}
    assert metrics["leadflow_interactions_late_max_seconds"] == {(): 42.5}
    assert metrics["leadflow_worker_messages_total"] == {(): 35}
    assert metrics["leadflow_worker_messages_skipped_total"] == {(): 4}
    assert metrics["leadflow_worker_batches_total"] == {(): 6}
    assert metrics["leadflow_worker_write_conflicts_total"] == {(): 9}
    assert metrics["leadflow_worker_partitions"] == {(): 0}  # nothing assigned yet
    assert "leadflow_relay_events_total" not in metrics  # no relay in this process


def test_the_worker_lag_is_each_read_partition_end_less_the_offset_after_its_position() -> None:
    worker = _worker()
    tps = [TopicPartition(TOPIC, p) for p in range(4)]
    # 0: applied up to 9 of 25; 1: nothing applied yet, 12 on it; 2: caught up; 3: never fetched
    worker._consumer = FakeConsumer({tps[0]: 25, tps[1]: 12, tps[2]: 40, tps[3]: None})
    worker.order.assign(tps)
    worker._tracked = {tps[0]: 9, tps[2]: 39}
    worker.membership = Membership.READING

    metrics = scrape(worker_registry(worker, None))

    assert metrics["leadflow_consumer_lag_messages"] == {
        (("partition", "0"), ("topic", TOPIC)): 15,
        (("partition", "1"), ("topic", TOPIC)): 12,
        (("partition", "2"), ("topic", TOPIC)): 0,
    }
    assert metrics["leadflow_worker_partitions"] == {(): 4}
    assert metrics["leadflow_worker_membership"] == {
        (("state", "joining"),): 0,
        (("state", "reading"),): 1,
        (("state", "standing_by"),): 0,
    }


def test_a_worker_standing_by_says_so_and_reports_no_lag() -> None:
    worker = _worker()
    worker._consumer = FakeConsumer({})
    worker.membership = Membership.STANDING_BY

    metrics = scrape(worker_registry(worker, None))

    assert metrics["leadflow_worker_membership"][(("state", "standing_by"),)] == 1
    assert metrics["leadflow_worker_membership"][(("state", "reading"),)] == 0
    assert "leadflow_consumer_lag_messages" not in metrics


def test_the_relay_counts_are_exposed() -> None:
    relay = _relay()
    c = relay.counts
    c.events, c.stage_changes, c.refusals, c.pages, c.position = 120, 30, 4, 3, 118

    metrics = scrape(worker_registry(None, relay))

    assert metrics["leadflow_relay_events_total"] == {(): 120}
    assert metrics["leadflow_relay_stage_changes_total"] == {(): 30}
    assert metrics["leadflow_relay_refusals_total"] == {(): 4}
    assert metrics["leadflow_relay_pages_total"] == {(): 3}
    assert metrics["leadflow_relay_position"] == {(): 118}
    assert "leadflow_interactions_total" not in metrics  # no lifecycle worker here


def test_the_projector_counts_lag_and_liveness_are_exposed() -> None:
    events, spend = "p.leadflow.lead-events.v1", "p.leadflow.spend.v1"
    state = ProjectionState(
        counts=ProjectorCounts(
            events=100,
            applied=90,
            duplicates=6,
            spend=5,
            spend_duplicates=1,
            invalid=3,
            unfoldable=1,
            spend_invalid=2,
            failed=1,
        )
    )
    state.targets = {(events, 0): 60, (events, 1): 40, (spend, 0): 7}
    state.positions = {(events, 0): 60, (events, 1): 30, (spend, 0): 7}
    state.ends = {(events, 0): 75}  # a fetch after the start saw 15 more

    metrics = scrape(projector_registry(state))

    assert metrics["leadflow_projector_lead_events_read_total"] == {(): 100}
    assert metrics["leadflow_projector_events_folded_total"] == {(): 90}
    assert metrics["leadflow_projector_events_duplicate_total"] == {(): 6}
    assert metrics["leadflow_projector_spend_total"] == {
        (("outcome", "counted"),): 5,
        (("outcome", "duplicate"),): 1,
    }
    assert metrics["leadflow_projector_dead_letters_total"] == {
        (("reason", "invalid"),): 3,
        (("reason", "unfoldable"),): 1,
        (("reason", "failed"),): 1,
    }
    assert metrics["leadflow_consumer_lag_messages"] == {
        (("partition", "0"), ("topic", events)): 15,
        (("partition", "1"), ("topic", events)): 10,
        (("partition", "0"), ("topic", spend)): 0,
    }
    assert metrics["leadflow_projector_live"] == {(): 0}  # 10 behind the ends at start

    state.positions[(events, 1)] = 40
    assert scrape(projector_registry(state))["leadflow_projector_live"] == {(): 1}


def test_every_process_reports_its_memory_and_cpu() -> None:
    metrics = scrape(worker_registry(_worker(), _relay()))
    assert metrics["process_resident_memory_bytes"][()] > 1_000_000
    assert metrics["process_cpu_seconds_total"][()] > 0
    assert "process_resident_memory_bytes" in scrape(projector_registry(ProjectionState()))


def test_every_leadflow_metric_says_what_it_means() -> None:
    for registry in (worker_registry(_worker(), _relay()), projector_registry(ProjectionState())):
        documented = helps(registry)
        ours = {name: text for name, text in documented.items() if name.startswith("leadflow_")}
        assert len(ours) >= 7
        for name, text in ours.items():
            assert len(text) > 20, name


def test_two_registries_in_one_process_keep_their_own_counts() -> None:
    first, second = _worker(), _worker()
    first.counts.accepted, second.counts.accepted = 1, 2
    one, two = worker_registry(first, None), worker_registry(second, None)
    assert scrape(one)["leadflow_interactions_total"][(("outcome", "accepted"),)] == 1
    assert scrape(two)["leadflow_interactions_total"][(("outcome", "accepted"),)] == 2
