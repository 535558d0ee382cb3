"""Work done in a forked child process, its result or its failure brought back here.

A child forked from this process sees its memory as it is at the fork, so nothing is pickled on
the way in; the result (or the failure) comes back pickled through a pipe. An expected failure
(``leadflow.failures.explain``: a file that cannot be written, a store that is locked) is raised
here as the very exception the child raised, so the command line says it in one line as it
would had it happened here; anything else (a bug) is a ``RuntimeError`` with the child's
traceback.
"""

from __future__ import annotations

import multiprocessing
import pickle
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

from leadflow.failures import explain

__all__ = ["failure", "in_child", "raise_failure"]


def failure(exc: BaseException) -> bytes:
    """What a child sends back for ``exc`` (call it in the ``except`` that caught it)."""
    text = traceback.format_exc()
    if explain(exc) is not None:
        try:
            return pickle.dumps((exc, text))
        except Exception:  # an exception that does not pickle: its traceback says it all
            pass
    return pickle.dumps((None, text))


def raise_failure(sent: bytes, what: str) -> NoReturn:
    """Raise what ``failure`` sent for ``what`` (the child's name, for the message)."""
    exc, text = pickle.loads(sent)
    if exc is not None:
        raise exc from RuntimeError(f"in {what}:\n{text}")
    raise RuntimeError(f"{what} failed:\n{text}")


def in_child(work: Callable[[], Any], name: str) -> Callable[[], Any]:
    """Start ``work`` in a forked child process named ``name``; the returned function waits
    for its result, or raises its failure (see the module docstring)."""
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)

    def run() -> None:
        try:
            sending.send_bytes(pickle.dumps(work()))
        except BaseException as exc:  # everything goes back to the parent, which raises it
            sending.send_bytes(b"!" + failure(exc))
        finally:
            sending.close()

    child = context.Process(target=run, name=name, daemon=True)
    child.start()
    sending.close()

    def result() -> Any:
        try:
            sent = receiving.recv_bytes()
        except EOFError:
            child.join()
            raise RuntimeError(
                f"{name} ended without a result (exit code {child.exitcode})"
            ) from None
        finally:
            receiving.close()
        child.join()
        if sent[:1] == b"!":
            raise_failure(sent[1:], name)
        return pickle.loads(sent)

    return result
