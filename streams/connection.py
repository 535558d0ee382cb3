"""How leadflow connects to Kafka: one frozen description turned into client arguments.

LeadflowKafkaError        a Kafka client failed; the message says what leadflow was doing
 +-- KafkaAuthenticationError   the broker refused the SASL credentials (or the TLS handshake)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAlreadyExistsError,
    UnsupportedSaslMechanismError,
)
from aiokafka.record.default_records import DefaultRecordBatchBuilder

_AUTHENTICATION_ERRORS = (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    IllegalSaslStateError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
    ssl.SSLError,
)


MAX_REQUEST_BYTES = 1024 * 1024
"""The producers' ``max_request_size``: the largest message (value, key and record framing)
any leadflow producer sends. Every size check before a send derives from this one number, so a
message is refused or shortened by leadflow, with a clear reason, instead of by the client."""

# A value's length is a varint in the record and in the record's length: a few bytes more
# than an empty value's estimate.
_VARINT_GROWTH = 10

_LONG_KEY = 1024


def message_size(value: bytes, key: bytes | None = None) -> int:
    """How many bytes the producer counts for one message against ``MAX_REQUEST_BYTES``."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, []))


def fits(value: bytes, key: bytes | None = None) -> bool:
    """True if the producers send ``value`` under ``key`` as one message."""
    return message_size(value, key) <= MAX_REQUEST_BYTES


def value_room(key: bytes | None = None) -> int:
    """The largest value that fits in one message beside ``key``."""
    return MAX_REQUEST_BYTES - message_size(b"", key) - _VARINT_GROWTH


def bounded_key(key: bytes | None) -> bytes | None:
    """``key``, or its SHA-256 (hex) when longer than 1 KiB: the key of a dead letter, which
    must leave room for the rejection and still put copies of one key on one partition."""
    if key is None or len(key) <= _LONG_KEY:
        return key
    return hashlib.sha256(key).hexdigest().encode("ascii")


class LeadflowKafkaError(RuntimeError):
    """A Kafka operation failed; raised from the client's own error."""


class KafkaAuthenticationError(LeadflowKafkaError):
    """The broker refused leadflow's credentials (SASL) or the TLS handshake failed."""


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    """Where Kafka is and how to authenticate; the composition root builds it from settings."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    topic_configs: Mapping[str, Mapping[str, str]] = field(
        default_factory=dict, hash=False, compare=False
    )
    """Configs of the topics leadflow creates, by name (the interactions topic's
    ``retention.ms``); applied when ``ensure_topics`` creates them, never to existing ones."""

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client takes."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism or "SCRAM-SHA-512"
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        if self.security_protocol in ("SSL", "SASL_SSL"):
            context = ssl.create_default_context(cafile=self.ssl_cafile)
            if self.ssl_certfile:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
            kwargs["ssl_context"] = context
        return kwargs

    def producer(self, **overrides: Any) -> AIOKafkaProducer:
        """An idempotent producer (acks=all), batching for throughput, sending messages of at
        most ``MAX_REQUEST_BYTES``."""
        options: dict[str, Any] = {
            "max_request_size": MAX_REQUEST_BYTES,
            "enable_idempotence": True,
            "acks": "all",
            "linger_ms": 5,
            "max_batch_size": 256 * 1024,
            "compression_type": None,
        }
        options.update(overrides)
        return AIOKafkaProducer(**self.client_kwargs(), **options)

    def consumer(self, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
        """A consumer that never commits by itself and reads from the start when it has no
        position."""
        options: dict[str, Any] = {
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_partition_fetch_bytes": 4 * 1024 * 1024,
            "fetch_max_bytes": 16 * 1024 * 1024,
        }
        options.update(overrides)
        return AIOKafkaConsumer(*topics, **self.client_kwargs(), **options)


async def ensure_topics(
    connection: KafkaConnection, names: tuple[str, ...], partitions: int
) -> None:
    """Create the topics that do not exist yet (replication factor 1 on a single node), each
    with its ``connection.topic_configs`` (a topic that exists keeps its own)."""
    admin = AIOKafkaAdminClient(**connection.client_kwargs())
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            brokers = len((await admin.describe_cluster())["brokers"])
            replication = min(3, brokers)
            # Another process may create one between our check and our call.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            n,
                            partitions,
                            replication,
                            topic_configs=dict(connection.topic_configs.get(n, {})),
                        )
                        for n in missing
                    ]
                )
    except KafkaError as exc:
        await raise_connection_problem(connection, exc)
        if isinstance(exc, KafkaConnectionError):  # the usual first failure: say it plainly
            raise LeadflowKafkaError(
                f"cannot reach a broker at {connection.bootstrap_servers} (check "
                f"LEADFLOW_KAFKA_BOOTSTRAP_SERVERS and LEADFLOW_KAFKA_SECURITY_PROTOCOL): {exc}"
            ) from exc
        raise LeadflowKafkaError(
            f"could not create topics {names} on {connection.bootstrap_servers}: {exc!r}"
        ) from exc
    finally:
        await admin.close()


async def raise_connection_problem(
    connection: KafkaConnection, error: BaseException, timeout: float = 10.0
) -> None:
    """Raise ``KafkaAuthenticationError`` when ``error`` hides an authentication failure.

    aiokafka logs why it could not reach a bootstrap server and raises only "Unable to
    bootstrap"; this connects once to each server with the same settings to find out whether
    the broker refused the credentials or the TLS handshake. Returns (raises nothing) when the
    error is of another kind or no server refuses that way.
    """
    if not isinstance(error, KafkaConnectionError):
        return
    kwargs = connection.client_kwargs()
    del kwargs["bootstrap_servers"]
    for host, port, _family in collect_hosts(connection.bootstrap_servers, randomize=False):
        try:
            conn = await asyncio.wait_for(
                create_conn(host, port, request_timeout_ms=int(timeout * 1000), **kwargs),
                timeout,
            )
        except _AUTHENTICATION_ERRORS as exc:
            who = ""
            if connection.security_protocol.startswith("SASL"):
                mechanism = kwargs["sasl_mechanism"]
                who = f" as {connection.sasl_username!r} with {mechanism}"
            raise KafkaAuthenticationError(
                f"authentication failed on {host}:{port} ({connection.security_protocol}"
                f"{who}): {exc}; check LEADFLOW_KAFKA_SASL_USERNAME, "
                "LEADFLOW_KAFKA_SASL_PASSWORD, LEADFLOW_KAFKA_SASL_MECHANISM and the TLS files"
            ) from error
        except (OSError, KafkaError, TimeoutError):
            continue
        conn.close()
