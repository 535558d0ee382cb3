"""Process helpers shared by the local services: pid files, liveness, stopping, locks, log tails."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from leadflow.services.errors import ServiceError

#: How many log lines an error message carries.
TAIL_LINES = 40


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of ``path``, or a note that there is no log yet."""
    try:
        with path.open("rb") as f:
            # Read only the end: a broker log can grow large over many runs.
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"--- last lines of {path} ---\n{tail}"


def read_pid(path: Path) -> int | None:
    """The pid on the first line of ``path``, or None when the file is missing or garbled."""
    try:
        return int(path.read_text().split("\n", 1)[0].strip())
    except (FileNotFoundError, PermissionError, ValueError):
        return None


def _reap(pid: int) -> None:
    # A child of this very process stays a zombie until waited for; waiting on a non-child raises.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pid_alive(pid: int, marker: str | None = None) -> bool:
    """True when ``pid`` runs and, if given, its command line contains ``marker``.

    A zombie counts as dead once its last thread is gone (its sockets are closed then).

    The marker guards against a stale pid file whose pid the kernel has since given to another
    program.
    """
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    # The state follows the parenthesised command name, which may itself contain spaces.
    state = stat.rsplit(")", 1)[1].split()[0]
    if state in ("Z", "X"):
        # Its command line went with its main thread, so the marker cannot be checked; that a
        # stale pid file names some other dying process is too unlikely to matter.
        return _other_threads_alive(pid)
    return marker is None or marker in cmdline


def _other_threads_alive(pid: int) -> bool:
    # A multi-threaded process (a JVM) killed by a signal shows its main thread as a zombie while
    # the other threads are still being torn down, and its sockets stay open until the last one
    # is gone: it is only dead once no other thread is listed.
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False


def wait_for_exit(pid: int, marker: str | None, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to exit; True when it did."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid, marker):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def terminate(pid: int, marker: str | None, timeout: float = 30.0) -> None:
    """SIGTERM ``pid``, wait up to ``timeout`` seconds, then SIGKILL it if it still runs."""
    if not pid_alive(pid, marker):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_for_exit(pid, marker, timeout):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not wait_for_exit(pid, marker, 10.0):
        raise ServiceError(f"process {pid} survived SIGKILL")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` block.

    It serialises start and stop between processes (two test sessions, a test session and the
    command line) that share one data directory.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    what: str,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` to completion; raise :class:`ServiceError` naming ``what`` when it fails.

    The error carries the command's output and, when ``log`` is given, that log's tail.
    """
    try:
        result = subprocess.run(
            [os.fspath(c) for c in cmd],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ServiceError(f"{what}: {exc.filename} is not installed or not on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(f"{what}: no result after {timeout:.0f} s") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-4000:]
        message = f"{what} failed (exit {result.returncode}):\n{output}"
        if log is not None:
            message += "\n" + log_tail(log)
        raise ServiceError(message)
    return result
