"""The Kafka side: the lifecycle worker, the relay of lifecycle events, the dead-letter path,
and (later) the projection workers and their HTTP API.

The only package that talks to Kafka; it translates client errors into ``LeadflowKafkaError``.
"""
