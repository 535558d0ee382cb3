"""A real PostgreSQL server run locally from Debian's packages, in a cluster of leadflow's own.

The cluster lives in ``DATA_DIR/postgres``::

    DATA_DIR/postgres/      owned by the ``postgres`` OS user, mode 700
        data/               PGDATA (initdb); data/leadflow.conf holds the port and addresses
        run/                the unix socket
        postgres.log        the server's log

PostgreSQL refuses to run as root, so when leadflow runs as root, initdb and pg_ctl run as the
``postgres`` OS user (``runuser -u postgres --``). That user must be able to traverse to the
cluster: when it cannot reach ``DATA_DIR`` (a home directory with mode 700, say), or the socket's
path would exceed the kernel's 107-byte limit, the cluster goes to
``/var/tmp/leadflow-postgres-<port>`` instead; :meth:`LocalPostgres.status` shows which one is used.

The server listens on 127.0.0.1 only. The role and database of ``Settings.postgres_url``
(``leadflow``/``leadflow``, database ``leadflow``) are created on start; clients log in with that
password over TCP. The superuser ``postgres`` is reachable only through the unix socket, whose
directory only root and ``postgres`` can enter.

When ``LEADFLOW_POSTGRES_DSN`` is set nothing is installed or started: :meth:`LocalPostgres.start`
only checks that the DSN connects.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from leadflow.services import _process
from leadflow.services.errors import ServiceError
from leadflow.settings import Settings

_PG_USER = "postgres"
_INSTALL_TIMEOUT = 900.0
# sun_path holds 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class PostgresStatus:
    """What :meth:`LocalPostgres.status` found.

    ``running`` says the server process is alive (for a configured DSN: that it connects);
    ``ready`` says the DSN connects. ``pid`` and ``cluster_dir`` are None for an external server.
    """

    running: bool
    ready: bool
    pid: int | None
    dsn: str
    version: str
    cluster_dir: Path | None


def _find_bin_dir() -> Path | None:
    # Debian installs each major version side by side; the newest wins.
    candidates = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if not candidates:
        return None
    return max(candidates, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)


def _with_dbname(dsn: str, dbname: str) -> str:
    """``dsn`` pointing at database ``dbname`` instead, in the same form (URL or key=value)."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        return urlunsplit(parts._replace(path="/" + dbname))
    return make_conninfo(dsn, dbname=dbname)


def _connects(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=5):
            return True
    except psycopg.Error:
        return False


class LocalPostgres:
    """Installs (once), initialises, starts, checks and stops leadflow's local PostgreSQL.

    Constructing one does no I/O. The cluster directory is decided on first use (see the
    module's docstring).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.preferred_dir = (settings.data_dir / "postgres").absolute()
        self.fallback_dir = Path(f"/var/tmp/leadflow-postgres-{settings.postgres_port}")
        self._cluster: Path | None = None
        self._as_root = os.geteuid() == 0

    # -- where things are ----------------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """The DSN clients use: the configured one or the local server's."""
        return self.settings.postgres_url

    def _as_pg(self, cmd: list[str]) -> list[str]:
        # The server refuses to run as root; as any other user it runs as that user.
        return ["runuser", "-u", _PG_USER, "--", *cmd] if self._as_root else cmd

    def _reachable_by_pg(self, directory: Path) -> bool:
        if not self._as_root:
            return True
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        # "test -x" as postgres fails unless every ancestor can be searched by that user.
        probe = subprocess.run(
            self._as_pg(["test", "-x", str(directory)]),
            cwd="/",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        return probe.returncode == 0

    def cluster_dir(self) -> Path:
        """The cluster's directory: ``DATA_DIR/postgres``, or the /var/tmp fallback."""
        if self._cluster is None:
            socket_path = self.preferred_dir / "run" / f".s.PGSQL.{self.settings.postgres_port}"
            usable = len(str(socket_path)) <= _MAX_SOCKET_PATH and self._reachable_by_pg(
                self.preferred_dir.parent
            )
            self._cluster = self.preferred_dir if usable else self.fallback_dir
        return self._cluster

    @property
    def _pgdata(self) -> Path:
        return self.cluster_dir() / "data"

    @property
    def _socket_dir(self) -> Path:
        return self.cluster_dir() / "run"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.cluster_dir() / "postgres.log"

    # -- install and initialise ----------------------------------------------------------------

    def ensure_binaries(self) -> Path:
        """Debian's PostgreSQL server binaries directory, installing ``postgresql`` if missing."""
        bin_dir = _find_bin_dir()
        if bin_dir is not None:
            return bin_dir
        if not self._as_root:
            raise ServiceError("PostgreSQL is not installed: run apt-get install -y postgresql")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        _process.run(
            ["apt-get", "update"], what="apt-get update", timeout=_INSTALL_TIMEOUT, env=env
        )
        _process.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
            what="apt-get install postgresql",
            timeout=_INSTALL_TIMEOUT,
            env=env,
        )
        bin_dir = _find_bin_dir()
        if bin_dir is None:
            raise ServiceError("apt-get installed postgresql but no /usr/lib/postgresql/*/bin")
        return bin_dir

    def _own_dir(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            shutil.chown(directory, _PG_USER, _PG_USER)
        directory.chmod(0o700)

    def _initdb(self, bin_dir: Path) -> None:
        cluster = self.cluster_dir()
        marker = cluster / ".initialized"
        if marker.is_file():
            return
        # No marker: an earlier initdb was interrupted; its leftovers would make initdb refuse.
        shutil.rmtree(self._pgdata, ignore_errors=True)
        _process.run(
            self._as_pg(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self._pgdata),
                    "-U",
                    _PG_USER,
                    # The socket's directory is mode 700, so "trust" admits only root and
                    # postgres; TCP clients need a password.
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-instructions",
                ]
            ),
            what="initdb",
            timeout=300.0,
            cwd=cluster,
        )
        with (self._pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\n# leadflow's own settings, rewritten on every start\n")
            conf.write("include_if_exists = 'leadflow.conf'\n")
        marker.write_text("")

    def _write_conf(self) -> None:
        conf = self._pgdata / "leadflow.conf"
        conf.write_text(
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.settings.postgres_port}\n"
            f"unix_socket_directories = '{self._socket_dir}'\n"
        )
        if self._as_root:
            shutil.chown(conf, _PG_USER, _PG_USER)

    # -- start ---------------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> str:
        """Start the local server unless it runs, create leadflow's role and database; return DSN.

        Installs Debian's ``postgresql`` package first if its binaries are missing. With a DSN
        configured, only check that it connects. Raises :class:`ServiceError` with the server
        log's tail on failure.
        """
        if not self.settings.uses_local_postgres:
            self._check_connects()
            return self.dsn
        bin_dir = self.ensure_binaries()
        cluster = self.cluster_dir()
        self._own_dir(cluster)
        with _process.file_lock(cluster / ".lock"):
            self._own_dir(self._socket_dir)
            self._initdb(bin_dir)
            self._write_conf()
            if not self._server_running(bin_dir):
                self._pg_ctl_start(bin_dir, timeout)
            self._ensure_role_and_database()
        self._check_connects()
        return self.dsn

    def _pg_ctl(self, bin_dir: Path, *args: str) -> list[str]:
        return self._as_pg([str(bin_dir / "pg_ctl"), "-D", str(self._pgdata), *args])

    def _server_running(self, bin_dir: Path) -> bool:
        # pg_ctl status: 0 running, 3 not running, 4 no usable data directory.
        result = subprocess.run(
            self._pg_ctl(bin_dir, "status"),
            cwd=self.cluster_dir(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def _pg_ctl_start(self, bin_dir: Path, timeout: float) -> None:
        port = self.settings.postgres_port
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                raise ServiceError(
                    f"port 127.0.0.1:{port} is taken by another program; choose another "
                    "port (LEADFLOW_POSTGRES_PORT)"
                )
        self._own_dir(self.log_file.parent)
        _process.run(
            # -w waits until the server accepts connections; pg_ctl detaches the server into a
            # session of its own, so it outlives this process.
            self._pg_ctl(bin_dir, "-l", str(self.log_file), "-w", "-t", str(int(timeout)), "start"),
            what="pg_ctl start",
            timeout=timeout + 30.0,
            cwd=self.cluster_dir(),
            log=self.log_file,
        )

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        # The superuser over the unix socket: "trust" there, and the socket is root's/postgres's.
        try:
            return psycopg.connect(
                host=str(self._socket_dir),
                port=self.settings.postgres_port,
                user=_PG_USER,
                dbname="postgres",
                autocommit=True,
                connect_timeout=10,
            )
        except psycopg.Error as exc:
            raise ServiceError(
                f"cannot connect to the local PostgreSQL as {_PG_USER}: {exc}\n"
                + _process.log_tail(self.log_file)
            ) from exc

    def _ensure_role_and_database(self) -> None:
        params = conninfo_to_dict(self.dsn)
        user, password, dbname = str(params["user"]), str(params["password"]), str(params["dbname"])
        with self._admin() as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [user]).fetchone() is None:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                        sql.Identifier(user), sql.Literal(password)
                    )
                )
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname])
            if exists.fetchone() is None:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(dbname), sql.Identifier(user)
                    )
                )

    def _check_connects(self) -> None:
        try:
            with psycopg.connect(self.dsn, connect_timeout=10) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            where = "configured" if not self.settings.uses_local_postgres else "local"
            message = f"the {where} PostgreSQL did not accept a connection: {exc}"
            if self.settings.uses_local_postgres:
                message += "\n" + _process.log_tail(self.log_file)
            raise ServiceError(message) from exc

    # -- databases for tests -------------------------------------------------------------------

    def create_database(self, name: str) -> str:
        """Create an empty database ``name`` owned by leadflow's role; return its DSN.

        ``name`` must be a plain lower-case identifier. On a configured external server the
        DSN's role needs the CREATEDB privilege.
        """
        if not _DB_NAME.match(name):
            raise ServiceError(f"not a plain lower-case database name: {name!r}")
        owner = str(conninfo_to_dict(self.dsn)["user"])
        try:
            with self._maintenance_connection() as conn:
                query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                if self.settings.uses_local_postgres:
                    query = sql.SQL("{} OWNER {}").format(query, sql.Identifier(owner))
                conn.execute(query)
        except psycopg.Error as exc:
            raise ServiceError(f"cannot create database {name!r}: {exc}") from exc
        return _with_dbname(self.dsn, name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting its sessions (FORCE)."""
        if not _DB_NAME.match(name):
            raise ServiceError(f"not a plain lower-case database name: {name!r}")
        try:
            with self._maintenance_connection() as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        except psycopg.Error as exc:
            raise ServiceError(f"cannot drop database {name!r}: {exc}") from exc

    def _maintenance_connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self.settings.uses_local_postgres:
            return self._admin()
        # CREATE/DROP DATABASE cannot run inside a transaction block.
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)

    # -- stop and status -----------------------------------------------------------------------

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the local server (fast shutdown: clients are disconnected); no-op if stopped.

        Does nothing for a configured external server.
        """
        if not self.settings.uses_local_postgres:
            return
        bin_dir = _find_bin_dir()
        if bin_dir is None or not (self._pgdata / "PG_VERSION").is_file():
            return
        with _process.file_lock(self.cluster_dir() / ".lock"):
            if self._server_running(bin_dir):
                _process.run(
                    self._pg_ctl(bin_dir, "-m", "fast", "-w", "-t", str(int(timeout)), "stop"),
                    what="pg_ctl stop",
                    timeout=timeout + 30.0,
                    cwd=self.cluster_dir(),
                    log=self.log_file,
                )

    def _pid(self) -> int | None:
        # postmaster.pid's first line is the server's pid; the file outlives a crash, hence the
        # liveness check.
        pid = _process.read_pid(self._pgdata / "postmaster.pid")
        if pid is not None and _process.pid_alive(pid, str(self._pgdata)):
            return pid
        return None

    def status(self) -> PostgresStatus:
        """Whether the server runs and accepts the DSN, with its pid, version and cluster dir."""
        if not self.settings.uses_local_postgres:
            ready = _connects(self.dsn)
            return PostgresStatus(
                running=ready,
                ready=ready,
                pid=None,
                dsn=self.dsn,
                version="unknown (external server)",
                cluster_dir=None,
            )
        pid = self._pid()
        version_file = self._pgdata / "PG_VERSION"
        bin_dir = _find_bin_dir()
        if version_file.is_file():
            version = version_file.read_text().strip()
        else:
            version = bin_dir.parent.name if bin_dir is not None else "not installed"
        return PostgresStatus(
            running=pid is not None,
            ready=pid is not None and _connects(self.dsn),
            pid=pid,
            dsn=self.dsn,
            version=version,
            cluster_dir=self.cluster_dir(),
        )
