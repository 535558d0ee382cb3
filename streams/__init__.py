"""The edge of the system: Kafka, HTTP and the read models' database.

The lifecycle worker (``worker``) and the relay (``relay``) of lifecycle events with the
dead-letter path (``deadletter``, ``publishing``); the faust projector (``projector``), its
read-model store (``read_model_store``) and its HTTP API (``http_api`` with ``http_access``,
``http_auth``, ``http_limits``, ``http_server``); the Segment-spec door (``segment``); metrics,
health and readiness (``metrics``, ``readiness``, ``ops_http``).

The only package that talks to Kafka; it translates client errors into ``LeadflowKafkaError``.
It reaches the event store through the lifecycle application only.
"""
