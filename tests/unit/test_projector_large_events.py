"""Live = batch for a large lifecycle event: an identity link carries up to 200 of a visitor's
touches, well over the size limit of inbound messages on contract-sized ids and campaigns, and
the projector folds it as replay does (it would otherwise dead-letter it, and live attribution
would lack the visitor's touches)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from contracts import DEFAULT_MAX_BYTES, Source, encode
from leadflow.replay import replay_lines
from lifecycle.policy import load_policy
from streams.projector import ProjectionState
from tests.unit.examples import form, interaction

START = datetime(2026, 1, 1, tzinfo=UTC)


def _lines() -> list[bytes]:
    """A visitor's 250 page views (contract-sized ids and campaign), then the form that names
    the lead: the link hands the lead 200 touches in one event."""
    visitor = "v" * 150
    views = []
    for n in range(250):
        view = interaction("page_viewed", {"url": f"https://example.com/{n}"})
        del view["lead_id"]
        view |= {
            "id": f"view-{n:04d}-" + "x" * 150,
            "anonymous_id": visitor,
            "campaign": "c" * 200,
            "occurred_at": (START + timedelta(minutes=n)).isoformat(),
        }
        views.append(orjson.dumps(view))
    link = form(
        id="form-1",
        lead_id="L-large",
        anonymous_id=visitor,
        occurred_at=(START + timedelta(days=1)).isoformat(),
    )
    return [*views, orjson.dumps(link)]


def test_an_identity_link_over_the_inbound_limit_is_folded_live_as_replay_folds_it() -> None:
    policy = load_policy("b2b_saas")
    replay = replay_lines(_lines(), policy)
    assert replay.app is not None
    messages = [encode(e) for e in replay.app.lifecycle_events()]
    assert max(len(m) for m in messages) > DEFAULT_MAX_BYTES  # the case at hand
    state = ProjectionState(projections=type(replay.projections)(stages=policy.stages))
    for offset, message in enumerate(messages):
        assert state.fold_lifecycle(message, Source("lead-events", 0, offset)) is None
    assert state.counts.invalid == 0
    live = state.projections.to_document()
    assert orjson.dumps(live["attribution"]) == orjson.dumps(
        replay.projections.to_document()["attribution"]
    )
