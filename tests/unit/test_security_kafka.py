"""Kafka security without a broker: every client gets the SASL and TLS settings, a CA file is
what the TLS context trusts (shown by a real handshake), and the local broker's configuration
for a SCRAM listener (server.properties, the format command, refusals) is right."""

from __future__ import annotations

import asyncio
import json
import ssl
import stat
import subprocess
from pathlib import Path
from typing import Any, cast
from unittest import mock

import faust
import pytest

from leadflow import wiring
from leadflow.services import LocalKafka, ServiceError, _process
from leadflow.settings import Settings
from streams.connection import KafkaConnection
from streams.projector import faust_credentials

PASSWORD = "pw-Sup3r-s3cret!"

Subject = tuple[tuple[tuple[str, str], ...], ...]


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "cache_dir": tmp_path / "cache",
        "kafka_bootstrap_servers": None,
        "kafka_broker_port": 29092,
        "kafka_controller_port": 29093,
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_username": "leadflow",
        "kafka_sasl_password": PASSWORD,
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


# -- TLS material (openssl, as an operator would make it) ---------------------------------------


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 it signed, and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", d / "ca.key", "-out", d / "ca.pem", "-subj", "/CN=leadflow test CA",
    )  # fmt: skip
    for name, extra in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "")):
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", d / f"{name}.key",
            "-out", d / f"{name}.csr", "-subj", f"/CN={name}",
        )  # fmt: skip
        (d / f"{name}.ext").write_text(extra + "\n" if extra else "basicConstraints=CA:FALSE\n")
        _openssl(
            "x509", "-req", "-in", d / f"{name}.csr", "-CA", d / "ca.pem",
            "-CAkey", d / "ca.key", "-CAcreateserial", "-days", "2",
            "-out", d / f"{name}.pem", "-extfile", d / f"{name}.ext",
        )  # fmt: skip
    return {p.stem + p.suffix.replace(".", "_"): p for p in d.iterdir()}


# -- client settings ----------------------------------------------------------------------------


async def test_sasl_settings_reach_every_aiokafka_client() -> None:
    connection = KafkaConnection(
        "127.0.0.1:1",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="leadflow",
        sasl_password=PASSWORD,
    )
    kwargs = connection.client_kwargs()

    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("leadflow", PASSWORD)
    assert "ssl_context" not in kwargs
    assert PASSWORD not in repr(connection)
    producer, consumer = connection.producer(), connection.consumer("t")
    try:
        for client in (producer.client, consumer._client):
            assert client._security_protocol == "SASL_PLAINTEXT"
            assert client._sasl_mechanism == "SCRAM-SHA-512"
            assert client._sasl_plain_password == PASSWORD
    finally:
        await producer.stop()
        await consumer.stop()


def test_settings_carry_the_credentials_into_the_connection(tmp_path: Path) -> None:
    connection = wiring.kafka_connection(
        settings(tmp_path, kafka_bootstrap_servers="kafka.example:9093")
    )
    assert connection.sasl_password == PASSWORD
    assert connection.sasl_mechanism == "SCRAM-SHA-512"
    assert PASSWORD not in repr(settings(tmp_path))


def test_faust_gets_sasl_credentials_and_the_tls_context(pki: dict[str, Path]) -> None:
    sasl = faust_credentials(
        KafkaConnection(
            "b:9093",
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="leadflow",
            sasl_password=PASSWORD,
            ssl_cafile=str(pki["ca_pem"]),
        )
    )
    tls = faust_credentials(KafkaConnection("b:9093", "SSL", ssl_cafile=str(pki["ca_pem"])))

    assert isinstance(sasl, faust.SASLCredentials)
    assert (sasl.username, sasl.password, sasl.mechanism.value) == (
        "leadflow",
        PASSWORD,
        "SCRAM-SHA-512",
    )
    assert isinstance(sasl.ssl_context, ssl.SSLContext)
    assert isinstance(tls, faust.SSLCredentials)
    assert faust_credentials(KafkaConnection("b:9092")) is None


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_tls_trusts_the_ca_file_and_checks_the_host(protocol: str, pki: dict[str, Path]) -> None:
    connection = wiring.kafka_connection(
        Settings(
            kafka_bootstrap_servers="127.0.0.1:9093",
            kafka_security_protocol=protocol,
            kafka_sasl_username="leadflow",
            kafka_sasl_password=PASSWORD,
            kafka_ssl_cafile=pki["ca_pem"],
            kafka_ssl_certfile=pki["client_pem"],
            kafka_ssl_keyfile=pki["client_key"],
            _env_file=None,
        )
    )
    context = connection.client_kwargs()["ssl_context"]

    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    # typeshed types every field of a certificate as one union; "subject" is a tuple of
    # relative distinguished names, each a tuple of (name, value) pairs.
    subjects = [cast(Subject, c["subject"]) for c in context.get_ca_certs()]
    assert [dict(s[0])["commonName"] for s in subjects] == ["leadflow test CA"]
    assert ("sasl_mechanism" in connection.client_kwargs()) == (protocol == "SASL_SSL")


async def test_the_tls_context_completes_a_handshake_only_with_the_ca_file(
    pki: dict[str, Path],
) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(pki["server_pem"], pki["server_key"])
    server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    trusted = KafkaConnection(f"127.0.0.1:{port}", "SSL", ssl_cafile=str(pki["ca_pem"]))
    untrusted = KafkaConnection(f"127.0.0.1:{port}", "SSL")  # the system's CAs only
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=trusted.client_kwargs()["ssl_context"]
        )
        writer.close()
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(
                "127.0.0.1", port, ssl=untrusted.client_kwargs()["ssl_context"]
            )
    finally:
        server.close()
        await server.wait_closed()


def test_a_missing_ca_file_fails_when_the_connection_is_described(tmp_path: Path) -> None:
    connection = KafkaConnection("b:9093", "SSL", ssl_cafile=str(tmp_path / "missing.pem"))
    with pytest.raises(FileNotFoundError):
        connection.client_kwargs()


# -- the local broker's SCRAM listener ----------------------------------------------------------


def _properties(kafka: LocalKafka) -> dict[str, str]:
    kafka.home.mkdir(parents=True, exist_ok=True)
    kafka._write_config()
    lines = (kafka.home / "server.properties").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_a_sasl_plaintext_broker_has_only_scram_listeners_for_clients(tmp_path: Path) -> None:
    kafka = LocalKafka(settings(tmp_path))
    props = _properties(kafka)

    assert props["listeners"] == "SASL_PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["advertised.listeners"] == "SASL_PLAINTEXT://127.0.0.1:29092"
    assert props["inter.broker.listener.name"] == "SASL_PLAINTEXT"
    assert props["listener.security.protocol.map"] == (
        "CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
    )
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert props["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="leadflow" password="{PASSWORD}";'
    )
    # It holds the password: nobody else may read it.
    assert stat.S_IMODE((kafka.home / "server.properties").stat().st_mode) == 0o600


def test_a_plaintext_broker_is_configured_as_before(tmp_path: Path) -> None:
    props = _properties(LocalKafka(settings(tmp_path, kafka_security_protocol="PLAINTEXT")))

    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    assert not any("sasl" in key for key in props)


def test_formatting_creates_the_scram_user_and_never_shows_the_password(tmp_path: Path) -> None:
    kafka = LocalKafka(settings(tmp_path))
    kafka.home.mkdir(parents=True)
    kafka._write_config()
    commands: list[list[str]] = []

    def fails(cmd: list[Any], **_: Any) -> None:
        commands.append([str(c) for c in cmd])
        # As StorageTool does for a malformed argument: it quotes the argument back.
        raise ServiceError(f"formatting failed (exit 1):\nbad scram string '{cmd[-1]}'")

    with (
        mock.patch.object(kafka, "_java", return_value="java"),
        mock.patch.object(_process, "run", side_effect=fails),
        pytest.raises(ServiceError) as raised,
    ):
        kafka._format_storage()

    (command,) = commands
    assert command[-2:] == ["--add-scram", f"SCRAM-SHA-512=[name=leadflow,password={PASSWORD}]"]
    assert PASSWORD not in str(raised.value)
    assert "***" in str(raised.value)
    state = (kafka.home / "cluster.json").read_text()
    assert PASSWORD not in state
    assert json.loads(state)["scram"].startswith("leadflow:")
    assert stat.S_IMODE((kafka.home / "cluster.json").stat().st_mode) == 0o600


def _formatted(kafka: LocalKafka, scram: str | None) -> None:
    (kafka.home / "data").mkdir(parents=True)
    (kafka.home / "data" / "meta.properties").write_text("cluster.id=abc\n")
    state = {"cluster_id": "abc", "controller_port": 29093, "scram": scram}
    (kafka.home / "cluster.json").write_text(json.dumps(state))


def test_a_storage_formatted_with_other_credentials_is_refused_clearly(tmp_path: Path) -> None:
    first = LocalKafka(settings(tmp_path))
    _formatted(first, first._scram_fingerprint("abc"))
    first._format_storage()  # the same credentials: a restart, nothing to do

    for other, expected in (
        (settings(tmp_path, kafka_sasl_password="another-password"), "other SCRAM credentials"),
        (settings(tmp_path, kafka_sasl_username="someone"), "other SCRAM credentials"),
    ):
        with pytest.raises(ServiceError, match=expected) as raised:
            LocalKafka(other)._format_storage()
        assert "user 'leadflow'" in str(raised.value)
        assert "delete" in str(raised.value)
        assert "another-password" not in str(raised.value)


def test_a_plaintext_storage_cannot_become_a_scram_one_by_restarting(tmp_path: Path) -> None:
    kafka = LocalKafka(settings(tmp_path))
    _formatted(kafka, None)
    with pytest.raises(ServiceError, match="formatted without SCRAM credentials"):
        kafka._format_storage()
    # The other way round is fine: the SCRAM user simply goes unused.
    LocalKafka(settings(tmp_path, kafka_security_protocol="PLAINTEXT"))._format_storage()


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"kafka_security_protocol": "SSL"}, "PLAINTEXT or SASL_PLAINTEXT, not SSL"),
        ({"kafka_security_protocol": "SASL_SSL"}, "not SASL_SSL"),
        ({"kafka_sasl_password": None}, "needs LEADFLOW_KAFKA_SASL_USERNAME and"),
        ({"kafka_sasl_username": None}, "needs LEADFLOW_KAFKA_SASL_USERNAME and"),
        ({"kafka_sasl_mechanism": "PLAIN"}, "not LEADFLOW_KAFKA_SASL_MECHANISM='PLAIN'"),
        ({"kafka_sasl_password": 'pw"; evil=1'}, "cannot use this SASL password"),
        ({"kafka_sasl_password": "pw,name=admin]"}, "cannot use this SASL password"),
        ({"kafka_sasl_password": "pw\nlisteners=PLAINTEXT://0.0.0.0:1"}, "SASL password"),
        ({"kafka_sasl_username": "a]b"}, "cannot use this SASL username"),
    ],
)
def test_unusable_local_security_settings_are_refused_before_anything_runs(
    tmp_path: Path, overrides: dict[str, Any], problem: str
) -> None:
    kafka = LocalKafka(settings(tmp_path, **overrides))
    with pytest.raises(ServiceError, match=problem) as raised:
        _properties(kafka)
    assert "evil" not in str(raised.value)
    assert not (kafka.home / "server.properties").exists()


def test_scram_sha_256_is_accepted_too(tmp_path: Path) -> None:
    props = _properties(LocalKafka(settings(tmp_path, kafka_sasl_mechanism="SCRAM-SHA-256")))
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-256"
    assert "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config" in props
