"""Settings turned into adapters: the Kafka connection, topic names, the event store's
environment and the lifecycle application. The only place that knows both sides."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from contracts import Topics
from leadflow.settings import EventStoreKind, Settings
from streams.connection import KafkaConnection
from streams.http_auth import ApiAuth, ApiTokensError


def kafka_connection(settings: Settings) -> KafkaConnection:
    """How to reach Kafka, from the settings (the local broker when none is named)."""
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


def topics(settings: Settings) -> Topics:
    """The topic names under the configured prefix."""
    return Topics(prefix=settings.topic_prefix)


def postgres_env(dsn: str) -> dict[str, str]:
    """eventsourcing's PostgreSQL environment for a ``postgresql://`` DSN."""
    url = urlparse(dsn)
    if url.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"LEADFLOW_POSTGRES_DSN: expected postgresql://..., got {url.scheme!r}")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/") or "leadflow",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "leadflow"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_POOL_SIZE": "4",
    }


def event_store_env(settings: Settings) -> dict[str, str]:
    """eventsourcing's environment for the configured event store."""
    if settings.event_store is EventStoreKind.POSTGRES:
        return postgres_env(settings.postgres_url)
    if settings.event_store is EventStoreKind.SQLITE:
        settings.sqlite_file.parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.sqlite_file),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
