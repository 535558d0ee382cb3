"""Shared fixtures: the real services (Kafka, PostgreSQL) come from tests.services_fixtures."""

pytest_plugins = ["tests.services_fixtures"]
