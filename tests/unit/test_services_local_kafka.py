"""The local broker's liveness check, without a broker: a process this object launched is alive
while its ``Popen`` says so, even before its command line shows Kafka's main class (between the
fork and the exec, under load: the start used to call it dead, "exited while starting")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from leadflow.services import LocalKafka, _process
from leadflow.services.kafka import _MAIN_CLASS
from leadflow.settings import Settings


def test_a_broker_this_object_launched_is_alive_until_it_exits(tmp_path: Path) -> None:
    kafka = LocalKafka(
        Settings(data_dir=tmp_path / "data", kafka_bootstrap_servers=None, _env_file=None)
    )
    # A child whose command line does not (yet) name Kafka's main class, as a broker just forked.
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        assert not _process.pid_alive(child.pid, _MAIN_CLASS)
        kafka._proc = child
        assert kafka._alive(child.pid)
        assert not kafka._alive(child.pid + 1_000_000)  # another pid: the command-line check
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
    assert not kafka._alive(child.pid)  # exited: dead, whatever its command line
