"""Settings turned into adapters: the Kafka connection, topic names, the event store's
environment, the projector (its faust configuration and its read models). The only place that
knows both sides."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from contracts import Topics
from leadflow.settings import EventStoreKind, Settings, SettingsError
from lifecycle.errors import MasterKeyError
from lifecycle.personal import MASTER_KEY, master_key_bytes, new_master_key
from projections import ExchangeRates, RatesError, parse_rates
from streams.connection import KafkaConnection
from streams.http_auth import ApiAuth, ApiTokensError
from streams.http_limits import HttpLimits, IngestLimits
from streams.read_model_store import ReadModelStore
from streams.segment import SegmentMapping, SegmentMappingError, load_segment_mapping

if TYPE_CHECKING:
    from streams.dashboard import Dashboard
    from streams.projector import ProjectionState, ProjectorConfig

log = logging.getLogger("leadflow.wiring")

_HOUR_MS = 3_600_000


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """The configs of the topics that hold raw input, by name: how long the interactions and
    rejected topics keep messages (``retention.ms``), applied when leadflow creates them."""
    names = topics(settings)
    return {
        names.interactions: {
            "retention.ms": str(round(settings.interactions_retention_hours * _HOUR_MS))
        },
        names.rejected: {"retention.ms": str(round(settings.rejected_retention_hours * _HOUR_MS))},
    }


def kafka_connection(settings: Settings) -> KafkaConnection:
    """How to reach Kafka, from the settings (the local broker when none is named), with the
    configs of the topics leadflow creates."""
    password = settings.kafka_sasl_password
    return KafkaConnection(
        bootstrap_servers=settings.bootstrap_servers,
        security_protocol=settings.kafka_security_protocol.value,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_username=settings.kafka_sasl_username,
        sasl_password=password.get_secret_value() if password else None,
        ssl_cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
        ssl_certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
        ssl_keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        topic_configs=topic_configs(settings),
    )


def api_auth(settings: Settings) -> ApiAuth:
    """The HTTP API's bearer tokens, from ``LEADFLOW_API_TOKENS`` and ``LEADFLOW_API_TOKENS_FILE``.

    Raises ``ApiTokensError`` (naming the entry, never the token) when they cannot be read.
    """
    tokens = settings.api_tokens.get_secret_value() if settings.api_tokens else None
    sources: list[tuple[str, str | None]] = [("LEADFLOW_API_TOKENS", tokens)]
    path = settings.api_tokens_file
    if path is not None:
        try:
            sources.append((f"LEADFLOW_API_TOKENS_FILE {path}", path.read_text("utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise ApiTokensError(
                f"LEADFLOW_API_TOKENS_FILE {path}: cannot be read: {exc}"
            ) from None
    return ApiAuth.parse(*sources)


def http_limits(settings: Settings) -> HttpLimits:
    """The HTTP API's timeouts and connection caps, from the ``LEADFLOW_HTTP_*`` settings."""
    return HttpLimits(
        header_timeout=settings.http_header_timeout,
        body_timeout=settings.http_body_timeout,
        max_connections_per_client=settings.http_max_connections_per_client,
        max_connections=settings.http_max_connections,
    )


def ingest_limits(settings: Settings) -> IngestLimits:
    """``POST /interactions``' batch sizes and rate limit, from the ``LEADFLOW_HTTP_*``
    settings; ``SettingsError`` naming the variables when the burst is below a batch."""
    try:
        return IngestLimits(
            max_lines=settings.http_batch_max_lines,
            max_bytes=settings.http_batch_max_bytes,
            rate=settings.http_ingest_rate,
            burst=settings.http_ingest_burst,
        )
    except ValueError as exc:
        raise SettingsError(
            f"LEADFLOW_HTTP_INGEST_BURST, LEADFLOW_HTTP_BATCH_MAX_LINES: {exc}"
        ) from None


def segment_mapping(settings: Settings) -> SegmentMapping:
    """The Segment mapping ``LEADFLOW_SEGMENT_MAPPING`` names (the built-in default when unset);
    ``SettingsError`` naming the variable, the key path and the problem when it is not valid."""
    try:
        return load_segment_mapping(settings.segment_mapping)
    except SegmentMappingError as exc:
        raise SettingsError(f"LEADFLOW_SEGMENT_MAPPING: {exc}") from None


def exchange_rates(settings: Settings, path: Path | None = None) -> ExchangeRates | None:
    """The rates of ``path`` (a command's ``--rates``), else of ``LEADFLOW_RATES_FILE``; ``None``
    when neither is given. ``SettingsError`` naming the file (and the setting), the line and
    the problem when it cannot be read."""
    chosen = path or settings.rates_file
    if chosen is None:
        return None
    name = str(chosen) if path is not None else f"LEADFLOW_RATES_FILE {chosen}"
    try:
        text = chosen.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{name}: cannot read the rates: {exc}") from None
    try:
        return parse_rates(text, str(chosen))
    except RatesError as exc:
        raise SettingsError(str(exc)) from None


def dashboard() -> Dashboard:
    """The projector's dashboard with the reports' names for stages, models and milestones,
    offering the milestones and models ``/attribution`` takes, in the reports' order."""
    from leadflow.reporting.formatting import (  # noqa: PLC0415 (the reports only when serving)
        FUNNEL_STEPS,
        MILESTONE_LABELS,
        MODEL_LABELS,
        STAGE_LABELS,
    )
    from projections import MODELS  # noqa: PLC0415
    from streams.dashboard import Dashboard  # noqa: PLC0415 (plotly's figures: only when serving)
    from streams.http_api import ATTRIBUTION_MILESTONES  # noqa: PLC0415

    return Dashboard(
        milestones=ATTRIBUTION_MILESTONES,
        models=MODELS,
        stage_labels=STAGE_LABELS,
        model_labels=MODEL_LABELS,
        milestone_labels={**MILESTONE_LABELS, "revenue": "Revenue"},
        funnel_steps=FUNNEL_STEPS,
    )


def topics(settings: Settings) -> Topics:
    """The topic names under the configured prefix."""
    return Topics(prefix=settings.topic_prefix)


def postgres_env(dsn: str) -> dict[str, str]:
    """eventsourcing's PostgreSQL environment for a ``postgresql://`` DSN."""
    url = urlparse(dsn)
    if url.scheme not in ("postgresql", "postgres"):
        raise SettingsError(f"LEADFLOW_POSTGRES_DSN: expected postgresql://..., got {url.scheme!r}")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/") or "leadflow",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "leadflow"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_POOL_SIZE": "4",
    }


def master_key(settings: Settings, *, create: bool = True) -> str | None:
    """The master key of personal data (base64): ``LEADFLOW_MASTER_KEY``, else the one kept in
    ``master_key_path``; when neither exists and ``create``, a new random key written there
    (mode 0600, never over an existing file) with a warning saying so. Raises
    ``MasterKeyError`` (naming where, never showing the key) for one that is not 32 bytes."""
    if settings.master_key is not None:
        text = settings.master_key.get_secret_value().strip()
        where = "LEADFLOW_MASTER_KEY"
    else:
        path = settings.master_key_path
        where = str(path)
        try:
            text = path.read_text("ascii").strip()
        except FileNotFoundError:
            if not create:
                return None
            text = _new_key_file(settings)
        except (OSError, UnicodeDecodeError) as exc:
            raise MasterKeyError(f"{where}: cannot be read ({type(exc).__name__})") from None
    try:
        master_key_bytes(text)
    except MasterKeyError as exc:
        raise MasterKeyError(f"{where}: {exc}") from None
    return text


def _new_key_file(settings: Settings) -> str:
    path = settings.master_key_path
    path.parent.mkdir(parents=True, exist_ok=True)
    key = new_master_key()
    # Written whole under a name of its own, then linked into place (which fails if the file
    # exists): a process starting at the same moment reads no key file or a whole one, never
    # one being written (six workers starting together read it empty).
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(draft, path)
        except FileExistsError:  # another process made it first: use that one
            return path.read_text("ascii").strip()
    finally:
        os.unlink(draft)
    log.warning(
        "no LEADFLOW_MASTER_KEY: made a new master key for personal data in %s (mode 0600); "
        "set LEADFLOW_MASTER_KEY for a store more than this machine uses, and keep a copy: "
        "without it no personal value in the store can be read",
        path,
    )
    return key


def event_store_env(settings: Settings, *, create_master_key: bool = True) -> dict[str, str]:
    """eventsourcing's environment for the configured event store, with the master key of
    personal data (made when there is none and ``create_master_key``; reading commands pass
    False, and then read without one: erased values still read as erased)."""
    env: dict[str, str]
    if settings.event_store is EventStoreKind.POSTGRES:
        env = postgres_env(settings.postgres_url)
    elif settings.event_store is EventStoreKind.SQLITE:
        settings.sqlite_file.parent.mkdir(parents=True, exist_ok=True)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.sqlite_file),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    else:  # in memory: a key of its own unless one is configured
        env = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
        if settings.master_key is not None:
            env[MASTER_KEY] = master_key(settings) or ""
        return env
    key = master_key(settings, create=create_master_key)
    if key is not None:
        env[MASTER_KEY] = key
    return env


def read_model_store(settings: Settings) -> ReadModelStore | None:
    """Where the projector stores its read models, beside the event store: a SQLite file, the
    PostgreSQL database, or nowhere (an in-memory event store: folded from offset 0 at each
    start)."""
    if settings.event_store is EventStoreKind.POSTGRES:
        return ReadModelStore.postgres(settings.postgres_url)
    if settings.event_store is EventStoreKind.SQLITE:
        return ReadModelStore.sqlite(settings.read_models_file)
    return None


@dataclass(frozen=True, slots=True)
class Projector:
    """A projector as the settings make it: what its faust app needs, and its fold."""

    config: ProjectorConfig
    state: ProjectionState


def projector(
    settings: Settings,
    connection: KafkaConnection,
    *,
    group_id: str,
    store: ReadModelStore | None = None,
    rebuild: bool = False,
) -> Projector:
    """The projector of consumer group ``group_id`` on ``connection``: the configured policy's
    read models (in the reporting currency of ``LEADFLOW_RATES_FILE`` when set), going on from
    ``store`` when given (``leadflow.replay.projection_state``), and its faust configuration. Raises
    ``SettingsError`` when the rates cannot be read, ``PolicyError`` for a policy that does not
    load."""
    from leadflow import replay  # noqa: PLC0415 (the read models only for a projector)
    from lifecycle.policy import load_policy  # noqa: PLC0415
    from streams.projector import (  # noqa: PLC0415 (faust only for a projector)
        ProjectorConfig,
        faust_broker_url,
        faust_credentials,
    )

    config = ProjectorConfig(
        broker=faust_broker_url(settings.bootstrap_servers),
        topic_prefix=settings.topic_prefix,
        group_id=group_id,
        credentials=faust_credentials(connection),
        datadir=settings.data_dir / "projector",
        max_message_bytes=settings.max_message_bytes,
    )
    policy = load_policy(settings.policy)
    state = replay.projection_state(
        policy,
        rates=exchange_rates(settings),
        max_message_bytes=settings.max_message_bytes,
        store=store,
        rebuild=rebuild,
    )
    return Projector(config, state)
