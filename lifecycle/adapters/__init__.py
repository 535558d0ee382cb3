"""The lifecycle's store adapters: the SQL that eventsourcing's recorders do not write for us.

- ``interaction_ids_sqlite`` / ``interaction_ids_postgres``: process recorders that keep the
  store-wide index of interaction ids in the transaction of the events (and, on PostgreSQL, read
  the notification log in binary);
- ``stream_reads``: many streams and their latest snapshots read in one query per batch;
- ``notifications``: the notification log read as plain rows for the relay;
- ``key_stores``: the key table of personal data, and the vault over it.

The domain (``lifecycle.lead``, ``policy``, ``scoring``, ``ordering``, ``chain``, ...) never
imports them; the application wires them (``LeadLifecycle``), the relay reads through
``notifications``. The import-linter contracts in pyproject.toml hold these lines.
"""
