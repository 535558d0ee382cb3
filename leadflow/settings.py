"""The one settings object.

Every value comes from an environment variable with the prefix ``LEADFLOW_`` (or from a ``.env``
file in the working directory); docs/operations.md lists them. Nothing else in leadflow reads the
environment.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from lifecycle.ordering import DEFAULT_LATENESS
from streams.assignment import Assignment


class SettingsError(ValueError):
    """A setting has a value leadflow cannot use; the message names the variable."""


class EventStoreKind(StrEnum):
    """Which eventsourcing persistence module holds the lead streams."""

    SQLITE = "sqlite"
    POSTGRES = "postgres"
    MEMORY = "memory"


class LogFormat(StrEnum):
    """How a long-running process (worker, projector) writes its log records."""

    TEXT = "text"
    """One readable line a record (rich's layout on a terminal); the default."""
    JSON = "json"
    """One JSON object a line: time, level, logger, message, and the lead id and source
    position where the record has them (``leadflow.logs.JsonFormatter``)."""


class SecurityProtocol(StrEnum):
    """Kafka's security.protocol values."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class Settings(BaseSettings):
    """leadflow's settings, read from ``LEADFLOW_*`` environment variables and ``.env``."""

    model_config = SettingsConfigDict(
        env_prefix="LEADFLOW_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Field(
        default=Path(".leadflow"),
        description="Where the SQLite event store, the local broker's and PostgreSQL's data live.",
    )
    cache_dir: Path = Field(
        default=Path(".cache"),
        description="Where Apache Kafka's jars are fetched to (once).",
    )

    # Kafka
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        description="host:port[,host:port]; when unset, leadflow starts and uses its local broker.",
    )
    kafka_security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_broker_port: int = Field(default=19092, description="Local broker's client port.")
    kafka_controller_port: int = Field(default=19093, description="Local broker's KRaft port.")
    kafka_heap: str = Field(default="512m", description="Local broker's JVM heap (-Xmx/-Xms).")
    topic_prefix: str = Field(
        default="", description="Prefix for every topic name (isolates tests and tenants)."
    )
    topic_partitions: int = Field(default=4, ge=1)

    # Event store
    event_store: EventStoreKind = EventStoreKind.SQLITE
    sqlite_path: Path | None = Field(
        default=None, description="SQLite file; defaults to DATA_DIR/events.sqlite."
    )
    postgres_dsn: str | None = Field(
        default=None,
        description="postgresql://user:password@host:port/dbname; when unset with "
        "EVENT_STORE=postgres, leadflow starts and uses its local PostgreSQL.",
    )
    postgres_port: int = Field(default=55432, description="Local PostgreSQL's port.")
    read_models_path: Path | None = Field(
        default=None,
        description="The projector's SQLite file of read models when EVENT_STORE=sqlite; defaults "
        "to DATA_DIR/read_models.sqlite (with EVENT_STORE=postgres they are tables in that "
        "database, with memory they are not stored).",
    )
    allowed_lateness_seconds: float = Field(
        default=DEFAULT_LATENESS.total_seconds(),
        ge=0,
        # A year at most: the order subtracts it from business times (1970 at the earliest).
        le=365 * 86_400,
        description="How far behind its source's latest business time an interaction may "
        "arrive and still be applied at its own place (the worker and replay order interactions "
        "by business time: lifecycle.ordering); later ones are applied where that source's "
        "watermark stood, and counted as late. Live, a decision waits about this long.",
    )
    lifecycle_assignment: Assignment = Field(
        default=Assignment.ONE_ACTIVE,
        description="How several lifecycle workers of one group share the interactions' "
        "partitions: one-active (every partition to one worker, the others stand by: the outcome "
        "is the data's whatever the number of workers) or spread (partitions spread for "
        "throughput: a person whose interactions span two workers' partitions may be decided in "
        "arrival order). All workers of a group must say the same (streams.assignment).",
    )
    lead_cache_size: int = Field(
        default=50_000,
        ge=0,
        description="Leads the lifecycle worker keeps in memory between batches (least recently "
        "used go first; checked against the store at every batch; 0: none).",
    )

    # Personal data
    master_key: SecretStr | None = Field(
        default=None,
        description="The master key that wraps every lead's personal-data key: base64 of 32 "
        "random bytes. Unset: DATA_DIR/master.key, made (mode 0600) on first use; set it for "
        "any store more than one machine uses.",
    )
    master_key_file: Path | None = Field(
        default=None,
        description="Where the master key is kept when MASTER_KEY is unset; defaults to "
        "DATA_DIR/master.key.",
    )
    interactions_retention_hours: float = Field(
        default=168.0,
        gt=0,
        description="How long the interactions topic keeps raw messages (retention.ms, set when "
        "leadflow creates the topic); the event store keeps the history.",
    )
    rejected_retention_hours: float = Field(
        default=720.0,
        gt=0,
        description="How long the rejected topic keeps rejected messages with their original "
        "bytes (retention.ms, set when leadflow creates the topic).",
    )

    # Domain and contracts
    policy: str = Field(default="b2b_saas", description="Preset name or path to a policy TOML.")
    max_message_bytes: int = Field(default=64 * 1024, ge=1, description="Largest accepted message.")

    # HTTP API
    http_host: str = "127.0.0.1"
    http_port: int = 6066
    api_tokens: SecretStr | None = Field(
        default=None,
        description="Bearer tokens of the HTTP API: comma-separated TOKEN:SCOPE[+SCOPE] entries "
        "(scopes read, ingest, admin; TOKEN may be sha256:<hex digest of the token>). Unset "
        "(and no API_TOKENS_FILE): no authentication, and the API listens on loopback only.",
    )
    api_tokens_file: Path | None = Field(
        default=None,
        description="A file of TOKEN:SCOPE[+SCOPE] entries, one a line (# starts a comment); "
        "read at start, with API_TOKENS.",
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="The bearer token `leadflow report` sends to the HTTP API.",
    )
    http_header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a client has to send a request's line and headers, from the "
        "connection's start or the previous response; then it is disconnected (an idle "
        "keep-alive connection too).",
    )
    http_body_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a request's body may take once its headers are in; then 408 and "
        "the connection is closed.",
    )
    http_max_connections_per_client: int = Field(
        default=16,
        ge=1,
        description="Open connections one client address may hold; more are answered 503 and "
        "closed (behind a proxy every client has the proxy's address).",
    )
    http_max_connections: int = Field(
        default=256,
        ge=1,
        description="Open connections the HTTP API holds in all; more are answered 503 and closed.",
    )

    http_batch_max_lines: int = Field(
        default=1_000,
        ge=1,
        description="Interactions one POST /interactions batch may hold; more: 413, nothing "
        "published.",
    )
    http_batch_max_bytes: int = Field(
        default=1024 * 1024,
        ge=1,
        description="Bytes one POST /interactions batch may hold (each line at most "
        "MAX_MESSAGE_BYTES); more: 413, nothing published.",
    )
    http_ingest_rate: float = Field(
        default=20_000.0,
        gt=0,
        description="Interactions a second one token may send to POST /interactions on average "
        "(without tokens: all loopback clients together); more: 429 with Retry-After.",
    )
    http_ingest_burst: int = Field(
        default=20_000,
        ge=1,
        description="Interactions one token may send at once (the token bucket's size); at "
        "least HTTP_BATCH_MAX_LINES.",
    )

    # Operations: metrics, health, logs
    worker_http: bool = Field(
        default=True,
        description="Whether `leadflow worker` serves GET /metrics, /health and /ready on a "
        "listener of its own (the projector serves them on its HTTP API).",
    )
    worker_http_host: str = Field(
        default="127.0.0.1",
        description="Where `leadflow worker` serves /metrics, /health and /ready; beyond "
        "loopback only with bearer tokens (API_TOKENS), as the projector's API.",
    )
    worker_http_port: int = Field(
        default=6067,
        ge=0,
        le=65535,
        description="The port of that listener; 0: any free port (logged at start).",
    )
    alerts_http_host: str = Field(
        default="127.0.0.1",
        description="Where `leadflow alerts` serves GET /alerts, /metrics, /health and /ready; "
        "beyond loopback only with bearer tokens (API_TOKENS), as the projector's API.",
    )
    alerts_http_port: int = Field(
        default=6068,
        ge=0,
        le=65535,
        description="The port of `leadflow alerts`' listener; 0: any free port (logged).",
    )
    webhooks_config: Path | None = Field(
        default=None,
        description="The TOML file of `leadflow webhooks`' endpoints (docs/operations.md); "
        "`leadflow webhooks --config` overrides it.",
    )
    webhooks_http_port: int = Field(
        default=6069,
        ge=0,
        le=65535,
        description="The port of `leadflow webhooks`' /metrics, /health and /ready listener "
        "(on WORKER_HTTP_HOST's rules: loopback unless tokens are set).",
    )
    log_format: LogFormat = Field(
        default=LogFormat.TEXT,
        description="How `leadflow worker` and `leadflow projector` log: text (readable "
        "lines) or json (one JSON object a line, with lead_id, topic, partition and offset "
        "where a record has them).",
    )
    rates_file: Path | None = Field(
        default=None,
        description="A CSV of dated exchange rates (header date,currency,REPORTING; see "
        "projections/money.py): money in the documents is also converted into the reporting "
        "currency. Unset: money is reported per currency, never added across currencies. "
        "`--rates FILE` overrides it for one command.",
    )
    segment_mapping: Path | None = Field(
        default=None,
        description="A Segment mapping TOML for the Segment HTTP tracking API (/v1/track, "
        "/v1/identify, /v1/page, /v1/batch): which calls become which interactions, and the "
        "channel rules. Unset: the built-in default (streams/segment_mappings/default.toml).",
    )

    @property
    def allowed_lateness(self) -> timedelta:
        """``allowed_lateness_seconds`` as a duration."""
        return timedelta(seconds=self.allowed_lateness_seconds)

    @property
    def master_key_path(self) -> Path:
        """The file the master key is kept in when ``master_key`` is unset."""
        return self.master_key_file or self.data_dir / "master.key"

    @property
    def sqlite_file(self) -> Path:
        """The SQLite event store's file."""
        return self.sqlite_path or self.data_dir / "events.sqlite"

    @property
    def read_models_file(self) -> Path:
        """The projector's SQLite file of read models."""
        return self.read_models_path or self.data_dir / "read_models.sqlite"

    @property
    def uses_local_broker(self) -> bool:
        """True when leadflow must start its own broker (no bootstrap servers were given)."""
        return not self.kafka_bootstrap_servers

    @property
    def bootstrap_servers(self) -> str:
        """The bootstrap servers to connect to: the configured ones or the local broker's."""
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.kafka_broker_port}"

    @property
    def uses_local_postgres(self) -> bool:
        """True when leadflow must start its own PostgreSQL (no DSN was given)."""
        return not self.postgres_dsn

    @property
    def postgres_url(self) -> str:
        """The PostgreSQL DSN: the configured one or the local server's."""
        return self.postgres_dsn or (
            f"postgresql://leadflow:leadflow@127.0.0.1:{self.postgres_port}/leadflow"
        )
