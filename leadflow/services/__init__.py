"""Local services leadflow starts by itself: a single-node Kafka broker and a PostgreSQL server.

Both are started from what a bare Debian 12 machine can reach (Maven Central for Kafka's jars,
Debian's apt for PostgreSQL) and live under ``Settings.data_dir``. When settings name an external
cluster (``LEADFLOW_KAFKA_BOOTSTRAP_SERVERS``, ``LEADFLOW_POSTGRES_DSN``) nothing is started and
``start()`` only checks that it answers.

Errors: every failure is raised as :class:`ServiceError`, whose message carries the service's log
tail.
"""

from leadflow.services.errors import ServiceError
from leadflow.services.kafka import KafkaStatus, LocalKafka
from leadflow.services.postgres import LocalPostgres, PostgresStatus

__all__ = ["KafkaStatus", "LocalKafka", "LocalPostgres", "PostgresStatus", "ServiceError"]
