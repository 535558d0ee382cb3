"""The one error raised by leadflow's local services."""

from __future__ import annotations


class ServiceError(Exception):
    """A local or configured service could not be fetched, started, reached or stopped.

    The message says what failed and, where there is one, ends with the tail of the service's log.
    """
