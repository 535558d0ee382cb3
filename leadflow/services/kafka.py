"""A real single-node Apache Kafka broker (KRaft, broker and controller in one JVM) run locally.

The broker is Apache Kafka's own code: its jars come from Maven Central through
``kafka-pom.xml`` (copied once into ``CACHE_DIR/kafka/libs`` by
``mvn dependency:copy-dependencies``) and run on the ``java`` found on PATH (Java 17).
Everything it writes lives in ``DATA_DIR/kafka``::

    DATA_DIR/kafka/
        server.properties   generated on every start from the settings
        log4j2.properties   logging to stdout, which goes to kafka.log
        cluster.json        the cluster id and the controller port the storage was formatted with
        data/               log.dirs: the KRaft metadata log and the topics' partitions
        kafka.log           this run's log (kafka.log.1 keeps the previous run's)
        kafka.pid           the running broker's pid

The controller's address is written into the metadata log when the storage is formatted, so a
restart reuses the same ports and data directory and never formats again.

When ``LEADFLOW_KAFKA_BOOTSTRAP_SERVERS`` is set nothing is fetched or started:
:meth:`LocalKafka.start` only checks that the configured cluster answers a metadata request.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from leadflow.services import _process
from leadflow.services.errors import ServiceError
from leadflow.settings import SecurityProtocol, Settings

#: The Apache Kafka version ``kafka-pom.xml`` resolves (its ``kafka.version`` property).
KAFKA_VERSION = "4.1.1"

#: The broker's main class; also how a pid is recognised as our broker in /proc.
_MAIN_CLASS = "kafka.Kafka"
#: The line the broker logs once every component is up (KafkaRaftServer.startup).
_STARTED_LINE = "Kafka Server started"
#: Written into the libs directory after a complete copy; a copy without it is redone.
_FETCHED_MARKER = ".fetched"

# kafka-run-class.sh's JVM options, minus the heap (from settings) and the GC log.
_JVM_OPTIONS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
)

# Console only: the broker's stdout is already redirected to kafka.log. The request logger is
# as noisy at INFO as Kafka's own configuration assumes, so it stays at WARN like there. Log4j's
# own shutdown hook would stop logging while Kafka's hook is still shutting down (the log of a
# SIGTERM would end mid-shutdown); the console appender flushes every line, so it is not needed.
_LOG4J2 = """\
status = warn
name = leadflow-kafka
shutdownHook = disable
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
"""

#: The SASL mechanisms the local broker can authenticate clients with (users in its metadata).
_SCRAM_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
#: Characters a local SCRAM username or password cannot hold (JAAS, properties, --add-scram).
_SCRAM_FORBIDDEN = frozenset('"\\,[]=; \t')
_SCRAM_FORBIDDEN_SHOWN = '" \\ , [ ] = ;'

#: Authentication failures in a row after which a starting broker is taken to refuse us for good
#: (the first after its start could, in principle, precede its loading the SCRAM users).
_REFUSALS_BEFORE_GIVING_UP = 3

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class KafkaStatus:
    """What :meth:`LocalKafka.status` found.

    ``running`` says the broker process is alive (for a configured external cluster: that it
    answers); ``ready`` says it answered a metadata request. ``pid`` and ``data_dir`` are None for
    an external cluster.
    """

    running: bool
    ready: bool
    pid: int | None
    bootstrap: str
    version: str
    data_dir: Path | None


def _new_cluster_id() -> str:
    # The same form as Kafka's Uuid.randomUuid(): 16 random bytes, URL-safe base64 without
    # padding, never starting with "-" (it would read as a command-line option). Generating it
    # here saves one JVM start (kafka-storage random-uuid).
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read, from the moment it exists."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


_PORT_RELEASE_SECONDS = 10.0
"""How long a start waits for a port to close before calling it taken: a broker killed a moment
ago (a crash, ``kill``) can still answer on its ports while the kernel tears it down."""


def _port_released(port: int, grace: float) -> bool:
    """True once nothing answers on ``port``, waiting up to ``grace`` seconds for that."""
    deadline = time.monotonic() + grace
    while _port_open(port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def _run_coroutine(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion from synchronous code, even when an event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside a loop (an async test, a faust hook): asyncio.run would refuse, so the
    # probe gets its own loop on a worker thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _describe_cluster(settings: Settings, timeout: float) -> dict[str, Any]:
    # Imported here so that importing leadflow (the CLI's --help) does not import aiokafka.
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415
    from aiokafka.errors import KafkaError  # noqa: PLC0415

    from leadflow.wiring import kafka_connection  # noqa: PLC0415
    from streams.connection import raise_connection_problem  # noqa: PLC0415

    connection = kafka_connection(settings)
    admin = AIOKafkaAdminClient(
        **connection.client_kwargs(), request_timeout_ms=int(timeout * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), timeout)
        cluster: dict[str, Any] = await asyncio.wait_for(admin.describe_cluster(), timeout)
        return cluster
    except KafkaError as exc:
        # "Unable to bootstrap" hides a refused password: KafkaAuthenticationError says so.
        await raise_connection_problem(connection, exc, timeout)
        raise
    finally:
        await admin.close()


class LocalKafka:
    """Fetches, starts, checks and stops leadflow's local Kafka broker as ``settings`` describe it.

    Constructing one does no I/O. Every method is safe to call from several processes at once
    (start and stop hold a lock file in the broker's directory).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = (settings.data_dir / "kafka").absolute()
        self.libs_dir = (settings.cache_dir / "kafka" / "libs").absolute()
        # The broker this very object launched; polling it also reaps it once it exits.
        self._proc: subprocess.Popen[bytes] | None = None

    # -- paths ---------------------------------------------------------------------------------

    @property
    def log_file(self) -> Path:
        """The current run's broker log."""
        return self.home / "kafka.log"

    @property
    def pid_file(self) -> Path:
        """The running broker's pid file."""
        return self.home / "kafka.pid"

    @property
    def bootstrap(self) -> str:
        """The bootstrap address clients use: the configured cluster's or the local broker's."""
        return self.settings.bootstrap_servers

    # -- fetch ---------------------------------------------------------------------------------

    def is_fetched(self) -> bool:
        """True when a complete copy of the broker's jars is in the cache."""
        marker = self.libs_dir / _FETCHED_MARKER
        return (
            marker.is_file()
            and marker.read_text().strip() == KAFKA_VERSION
            and (self.libs_dir / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()
        )

    def fetch(self, timeout: float = 900.0) -> Path:
        """Copy Apache Kafka's run-time jars from Maven Central into the cache, once.

        Returns the libs directory. A copy that did not finish (no marker file) is removed and
        redone. Needs ``mvn`` on PATH.
        """
        if self.is_fetched():
            return self.libs_dir
        if shutil.which("mvn") is None:
            raise ServiceError("fetching Kafka's jars needs Maven: apt-get install -y maven")
        work = self.libs_dir.parent
        work.mkdir(parents=True, exist_ok=True)
        with _process.file_lock(work / ".lock"):
            if self.is_fetched():  # another process fetched while we waited for the lock
                return self.libs_dir
            shutil.rmtree(self.libs_dir, ignore_errors=True)
            # Maven runs on a copy of the POM so that nothing (target/, ...) is ever written
            # into the installed package.
            pom = work / "pom.xml"
            pom.write_bytes(
                resources.files("leadflow.services").joinpath("kafka-pom.xml").read_bytes()
            )
            _process.run(
                [
                    "mvn",
                    "-q",
                    "-B",
                    "-f",
                    pom,
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={self.libs_dir}",
                ],
                what="mvn dependency:copy-dependencies (Kafka's jars)",
                timeout=timeout,
                cwd=work,
            )
            if not (self.libs_dir / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
                raise ServiceError(f"mvn finished but {self.libs_dir} lacks kafka_2.13 jar")
            (self.libs_dir / _FETCHED_MARKER).write_text(KAFKA_VERSION + "\n")
        return self.libs_dir

    # -- start ---------------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> str:
        """Start the local broker unless it runs, wait until it serves metadata; return bootstrap.

        With an external cluster configured, only check that it answers. Raises
        :class:`ServiceError` (with the broker log's tail) when it cannot start or is not ready
        within ``timeout`` seconds; a broker this call launched is killed in that case.
        """
        if not self.settings.uses_local_broker:
            self._check_answers(timeout)
            return self.bootstrap
        self.fetch()
        self.home.mkdir(parents=True, exist_ok=True)
        with _process.file_lock(self.home / ".lock"):
            pid = self._running_pid()
            if pid is not None:
                # Running already (started by another process, or still starting): wait for it.
                self._wait_ready(pid, timeout, launched=False)
                return self.bootstrap
            self.pid_file.unlink(missing_ok=True)
            for port in (self.settings.kafka_broker_port, self.settings.kafka_controller_port):
                if not _port_released(port, _PORT_RELEASE_SECONDS):
                    raise ServiceError(
                        f"port 127.0.0.1:{port} is taken by another program; choose other ports "
                        "(LEADFLOW_KAFKA_BROKER_PORT, LEADFLOW_KAFKA_CONTROLLER_PORT)"
                    )
            self._write_config()
            self._format_storage()
            pid = self._launch()
            self._wait_ready(pid, timeout, launched=True)
        return self.bootstrap

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise ServiceError("the Kafka broker needs Java 17: apt-get install -y openjdk-17-jre")
        return java

    def _classpath(self) -> str:
        # The JVM expands "dir/*" to every jar in dir itself.
        return str(self.libs_dir / "*")

    def _client_listener(self) -> tuple[str, dict[str, str]]:
        """The client listener's name and its security properties, from the settings.

        PLAINTEXT: no authentication. SASL_PLAINTEXT: SCRAM (the mechanism of the settings,
        SCRAM-SHA-512 by default) with one user, the configured username and password, created
        when the storage is formatted; the broker uses the same user on the same listener for
        its own inter-broker traffic, so no port without authentication is opened for clients.
        The KRaft controller listener stays PLAINTEXT on 127.0.0.1 (SCRAM cannot authenticate
        the controller: its credentials live in the metadata log the controller serves).
        """
        s = self.settings
        protocol = s.kafka_security_protocol
        if protocol is SecurityProtocol.PLAINTEXT:
            return "PLAINTEXT", {}
        if protocol is not SecurityProtocol.SASL_PLAINTEXT:
            raise ServiceError(
                f"the local broker supports LEADFLOW_KAFKA_SECURITY_PROTOCOL=PLAINTEXT or "
                f"SASL_PLAINTEXT, not {protocol.value}; for TLS, run your own cluster and name it "
                "with LEADFLOW_KAFKA_BOOTSTRAP_SERVERS"
            )
        username, password = self._scram_user()
        mechanism = self._scram_mechanism()
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{username}" password="{password}";'
        )
        name = "SASL_PLAINTEXT"
        return name, {
            "sasl.enabled.mechanisms": mechanism,
            "sasl.mechanism.inter.broker.protocol": mechanism,
            f"listener.name.{name.lower()}.{mechanism.lower()}.sasl.jaas.config": jaas,
        }

    def _scram_mechanism(self) -> str:
        mechanism = self.settings.kafka_sasl_mechanism.upper()
        if mechanism not in _SCRAM_MECHANISMS:
            raise ServiceError(
                f"the local broker authenticates with {' or '.join(_SCRAM_MECHANISMS)}, not "
                f"LEADFLOW_KAFKA_SASL_MECHANISM={self.settings.kafka_sasl_mechanism!r}"
            )
        return mechanism

    def _scram_user(self) -> tuple[str, str]:
        s = self.settings
        if not s.kafka_sasl_username or s.kafka_sasl_password is None:
            raise ServiceError(
                "LEADFLOW_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs "
                "LEADFLOW_KAFKA_SASL_USERNAME and LEADFLOW_KAFKA_SASL_PASSWORD"
            )
        username = s.kafka_sasl_username
        password = s.kafka_sasl_password.get_secret_value()
        # Both end up inside a JAAS string, a properties file and StorageTool's --add-scram
        # argument; refusing the characters those syntaxes treat specially keeps them literal.
        for what, value in (("username", username), ("password", password)):
            bad = sorted({c for c in value if c in _SCRAM_FORBIDDEN or not c.isprintable()})
            if bad or not value:
                shown = ", ".join(repr(c) for c in bad) or "an empty value"
                raise ServiceError(
                    f"the local broker cannot use this SASL {what}: it contains {shown} "
                    f"(not allowed: whitespace, control characters and {_SCRAM_FORBIDDEN_SHOWN})"
                )
        return username, password

    def _scram_fingerprint(self, cluster_id: str) -> str | None:
        """Which SCRAM user the storage was formatted with, without keeping the password."""
        if self.settings.kafka_security_protocol is not SecurityProtocol.SASL_PLAINTEXT:
            return None
        username, password = self._scram_user()
        digest = hmac.new(
            cluster_id.encode(),
            f"{self._scram_mechanism()}\0{username}\0{password}".encode(),
            hashlib.sha256,
        ).hexdigest()
        return f"{username}:{digest}"

    def _write_config(self) -> None:
        s = self.settings
        data = self.home / "data"
        listener, security = self._client_listener()
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{s.kafka_controller_port}",
            "listeners": (
                f"{listener}://127.0.0.1:{s.kafka_broker_port},"
                f"CONTROLLER://127.0.0.1:{s.kafka_controller_port}"
            ),
            "advertised.listeners": f"{listener}://127.0.0.1:{s.kafka_broker_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": listener,
            "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{listener}:{listener}",
            **security,
            "log.dirs": str(data),
            # One node: every internal topic must make do with one replica.
            "offsets.topic.replication.factor": "1",
            # One partition for the internal topics starts faster than the default 50.
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "min.insync.replicas": "1",
            "default.replication.factor": "1",
            # Tests and a fresh machine should not wait 3 s for the first consumer group.
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "num.partitions": str(s.topic_partitions),
        }
        text = "# Generated by leadflow on every start; edits are overwritten.\n"
        text += "".join(f"{key}={value}\n" for key, value in lines.items())
        # It may hold the SASL password (the broker's own JAAS login).
        _write_private(self.home / "server.properties", text)
        (self.home / "log4j2.properties").write_text(_LOG4J2)

    def _format_storage(self) -> None:
        state_file = self.home / "cluster.json"
        meta = self.home / "data" / "meta.properties"
        state: dict[str, Any] = json.loads(state_file.read_text()) if state_file.is_file() else {}
        port = self.settings.kafka_controller_port
        if meta.is_file():
            formatted_port = state.get("controller_port")
            if formatted_port is not None and formatted_port != port:
                raise ServiceError(
                    f"the metadata log in {meta.parent} was formatted for controller port "
                    f"{formatted_port}, not {port}: set LEADFLOW_KAFKA_CONTROLLER_PORT="
                    f"{formatted_port} or delete {self.home} to start over (topics are lost)"
                )
            self._check_formatted_scram(state)
            return  # formatted already: a restart must not format again
        cluster_id = state.get("cluster_id") or _new_cluster_id()
        scram = self._scram_fingerprint(cluster_id)
        command: list[str | os.PathLike[str]] = [
            self._java(),
            "-Xmx256m",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp",
            self._classpath(),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            self.home / "server.properties",
            "--standalone",
            "--ignore-formatted",
        ]
        secret = None
        if scram is not None:
            username, secret = self._scram_user()
            mechanism = self._scram_mechanism()
            command += ["--add-scram", f"{mechanism}=[name={username},password={secret}]"]
        _write_private(
            state_file,
            json.dumps({"cluster_id": cluster_id, "controller_port": port, "scram": scram}),
        )
        try:
            _process.run(
                command,
                what="formatting the Kafka storage (kafka.tools.StorageTool format)",
                timeout=120.0,
                cwd=self.home,
            )
        except ServiceError as exc:
            if secret is None:
                raise
            # StorageTool may quote a malformed --add-scram argument back.
            raise ServiceError(str(exc).replace(secret, "***")) from None

    def _check_formatted_scram(self, state: dict[str, Any]) -> None:
        """SCRAM users are created only when the storage is formatted: refuse, clearly, to start
        a broker whose metadata log lacks the configured user or password."""
        wanted = self._scram_fingerprint(str(state.get("cluster_id", "")))
        if wanted is None or state.get("scram") == wanted:
            return
        formatted = state.get("scram")
        what = (
            "without SCRAM credentials"
            if not formatted
            else f"with other SCRAM credentials (user {str(formatted).split(':', 1)[0]!r})"
        )
        raise ServiceError(
            f"the metadata log in {self.home / 'data'} was formatted {what}; SCRAM users are "
            f"created only when the storage is formatted: use the credentials it was formatted "
            f"with, or delete {self.home} to start over (topics are lost)"
        )

    def _launch(self) -> int:
        heap = self.settings.kafka_heap
        # Keep the previous run's log for a post-mortem; this run's starts empty, so the
        # "started" line found in it is this run's.
        if self.log_file.exists():
            self.log_file.replace(self.home / "kafka.log.1")
        cmd = [
            self._java(),
            f"-Xmx{heap}",
            f"-Xms{heap}",
            *_JVM_OPTIONS,
            f"-Dkafka.logs.dir={self.home}",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp",
            self._classpath(),
            _MAIN_CLASS,
            str(self.home / "server.properties"),
        ]
        with self.log_file.open("ab") as log:
            # A session of its own: the broker outlives the command that started it and does not
            # get the terminal's Ctrl-C.
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{self._proc.pid}\n")
        return self._proc.pid

    def _started_logged(self) -> bool:
        try:
            return _STARTED_LINE in self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return False

    def _answers(self, timeout: float, *, refused: list[Exception] | None = None) -> bool:
        """True when the broker answers a metadata request; an authentication failure is
        appended to ``refused`` when given."""
        from streams.connection import KafkaAuthenticationError  # noqa: PLC0415

        try:
            _run_coroutine(_describe_cluster(self.settings, timeout))
        except KafkaAuthenticationError as exc:
            if refused is not None:
                refused.append(exc)
            return False
        except Exception:  # any failure means "not (yet) ready"; the caller decides what it means
            return False
        return True

    def _wait_ready(self, pid: int, timeout: float, *, launched: bool) -> None:
        deadline = time.monotonic() + timeout
        refused: list[Exception] = []
        while True:
            if not self._alive(pid):
                self.pid_file.unlink(missing_ok=True)
                raise ServiceError(
                    f"the Kafka broker (pid {pid}) exited while starting\n"
                    + _process.log_tail(self.log_file)
                )
            # An open port alone is no proof: the broker must have logged that it started and
            # must answer a metadata request.
            if self._started_logged() and self._answers(timeout=5.0, refused=refused):
                return
            if len(refused) >= _REFUSALS_BEFORE_GIVING_UP:
                # Waiting longer will not help: the running broker knows other credentials.
                message = f"the Kafka broker (pid {pid}) refuses the configured credentials"
                if launched:
                    self.kill()
                    message += "; it was killed"
                raise ServiceError(f"{message}: {refused[-1]}")
            if time.monotonic() >= deadline:
                break
            time.sleep(0.25)
        message = f"the Kafka broker (pid {pid}) was not ready within {timeout:.0f} s"
        if launched:
            # Do not leave a half-started broker holding the ports.
            self.kill()
            message += "; it was killed"
        raise ServiceError(message + "\n" + _process.log_tail(self.log_file))

    def _check_answers(self, timeout: float) -> None:
        try:
            _run_coroutine(_describe_cluster(self.settings, timeout))
        except Exception as exc:
            raise ServiceError(
                f"the configured Kafka cluster {self.bootstrap} did not answer a metadata "
                f"request: {exc!r}"
            ) from exc

    # -- stop, kill, status --------------------------------------------------------------------

    def _running_pid(self) -> int | None:
        pid = _process.read_pid(self.pid_file)
        if pid is not None and self._alive(pid):
            return pid
        return None

    def _alive(self, pid: int) -> bool:
        """Whether the broker ``pid`` runs. One this object launched is asked through its
        ``Popen``: just after the fork its command line is still this Python's (the exec has
        not happened yet), so the command-line check would call a starting broker dead (seen
        under load, as "exited while starting" with an empty log)."""
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None
        return _process.pid_alive(pid, _MAIN_CLASS)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the local broker cleanly (SIGTERM; SIGKILL after ``timeout`` s); no-op if stopped.

        Does nothing for an external cluster.
        """
        if not self.settings.uses_local_broker:
            return
        with _process.file_lock(self.home / ".lock"):
            pid = self._running_pid()
            if pid is not None:
                _process.terminate(pid, _MAIN_CLASS, timeout)
            self._forget()

    def kill(self) -> None:
        """SIGKILL the local broker at once, as a crash would; no-op if it is not running."""
        if not self.settings.uses_local_broker:
            return
        pid = self._running_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not _process.wait_for_exit(pid, _MAIN_CLASS, 10.0):
                raise ServiceError(f"the Kafka broker (pid {pid}) survived SIGKILL")
        self._forget()

    def _forget(self) -> None:
        if self._proc is not None:
            self._proc.poll()  # reap our child so it does not linger as a zombie
            self._proc = None
        self.pid_file.unlink(missing_ok=True)

    def status(self) -> KafkaStatus:
        """Whether the broker runs and answers, with its pid, bootstrap address and version."""
        if not self.settings.uses_local_broker:
            answers = self._answers(timeout=5.0)
            return KafkaStatus(
                running=answers,
                ready=answers,
                pid=None,
                bootstrap=self.bootstrap,
                version="unknown (external cluster)",
                data_dir=None,
            )
        pid = self._running_pid()
        return KafkaStatus(
            running=pid is not None,
            ready=pid is not None and self._answers(timeout=5.0),
            pid=pid,
            bootstrap=self.bootstrap,
            version=KAFKA_VERSION,
            data_dir=self.home,
        )
