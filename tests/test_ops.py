"""Operating dkw (docs/deploy.md): the configuration file, `--check-config` catching each problem it
lists, the /healthz and /readyz probes, audit records naming the replica, and the systemd unit.

Time budget: a few seconds (no solve; two in-process servers with one worker each).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import NO_POSTGRES, TEST_DATABASE_URL, own_database
from test_grpc import ROOT, wait_for
from test_security import Pki

from dkw.cli import main
from dkw.server.auth import add_client
from dkw.server.command import start_server
from dkw.server.sqlite import SqliteStorage

EXAMPLE = ROOT / "examples" / "dkw.toml"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def check(capsys, *args: str) -> tuple[int, list[str], str]:
    """`dkw serve --check-config ARGS`: (exit code, the problem lines, stdout)."""
    code = main(["serve", "--check-config", *args])
    out, err = capsys.readouterr()
    return code, [line for line in err.splitlines() if line.startswith("dkw serve --check-config:")], out


def only_problem(capsys, *args: str) -> str:
    code, lines, _ = check(capsys, *args)
    assert code == 2 and len(lines) == 1, lines
    return lines[0]


@contextlib.contextmanager
def taken_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


# ---- the configuration file -------------------------------------------------------------------------

def test_the_file_sets_options_and_flags_override_it(tmp_path, capsys):
    (tmp_path / "certs").mkdir()
    config = tmp_path / "dkw.toml"
    config.write_text('port = 0\nworkers = 3\ndata = "var"\ndrain-seconds = 12.5\nlog_format = "json"\n'
                      'policy = "certs/policy.json"\n')
    from dkw.cli import build_parser

    args = build_parser().parse_args(["serve", "--config", str(config), "--workers", "1"])
    assert (args.port, args.workers, args.drain_seconds, args.log_format) == (0, 1, 12.5, "json")
    assert args.data == str(tmp_path / "var")  # relative to the file's directory
    assert args.policy == str(tmp_path / "certs" / "policy.json")


@pytest.mark.parametrize(("text", "says"), [
    ("prot = 7443\n", "unknown key 'prot'"),
    ('port = "x"\n', "port = 'x': 'x' is not a port number"),
    ('workers = "2"\n', "workers = '2': must be a whole number"),
    ("port = 70000\n", "70000 is outside 1-65535"),
    ('insecure = "yes"\n', "insecure = 'yes': must be true or false"),
    ('log-format = "xml"\n', "must be one of text, json"),
    ("workers = 1.5\n", "must be a whole number"),
    ("port = \n", "not TOML"),
])
def test_a_bad_file_is_refused_naming_the_key_and_the_file(tmp_path, capsys, text, says):
    config = tmp_path / "dkw.toml"
    config.write_text(text)
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--config", str(config)])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(config) in err and says in err, err


def test_the_example_file_lists_every_option_and_checks_ok_as_shipped(tmp_path, capsys, monkeypatch):
    from dkw.cli import build_parser
    from dkw.server.config import options_of

    text = EXAMPLE.read_text()
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]
    for dest in options_of(serve):
        assert f"# {dest.replace('_', '-')} = " in text, f"examples/dkw.toml does not mention {dest}"
    uncommented = tmp_path / "dkw.toml"  # every commented default made real must still parse
    uncommented.write_text("\n".join(line[2:] for line in text.splitlines()
                                     if line.startswith("# ") and " = " in line and not line.startswith("# #")
                                     and line.split(" = ")[0][2:] not in ("database", "tls-cert", "tls-key",
                                     "tls-client-ca", "clients", "signing-key", "policy", "memory-limit",
                                     "threads", "metrics-port")))
    monkeypatch.chdir(tmp_path)
    code, lines, out = check(capsys, "--config", str(uncommented), "--port", "0", "--data", str(tmp_path / "var"))
    assert code == 0 and lines == [] and out.startswith("configuration OK"), (lines, out)


# ---- --check-config: each problem it lists ----------------------------------------------------------

def test_a_good_configuration_is_one_ok_line(tmp_path, capsys, pki):
    code, lines, out = check(capsys, "--port", "0", "--data", str(tmp_path), "--tls-cert", pki.server_cert,
                             "--tls-key", pki.server_key, "--metrics-port", "0")
    assert (code, lines) == (0, []) and len(out.splitlines()) == 1 and "configuration OK" in out


def test_unreadable_files(tmp_path, capsys):
    line = only_problem(capsys, "--data", str(tmp_path), "--port", "0", "--signing-key", str(tmp_path / "nope.pem"))
    assert "--signing-key" in line and "cannot read it" in line


def test_a_key_that_is_not_the_certificates(tmp_path, capsys, pki):
    line = only_problem(capsys, "--data", str(tmp_path), "--port", "0", "--tls-cert", pki.server_cert,
                        "--tls-key", pki.client_key)
    assert "--tls-key" in line or "--tls-cert" in line


def test_a_certificate_without_its_key(tmp_path, capsys, pki):
    assert "go together" in only_problem(capsys, "--data", str(tmp_path), "--port", "0", "--tls-cert", pki.server_cert)


def test_a_signing_key_that_is_not_one(tmp_path, capsys, pki):
    line = only_problem(capsys, "--data", str(tmp_path), "--port", "0", "--signing-key", pki.server_key)
    assert "--signing-key" in line and "Ed25519" in line


def test_a_broken_or_empty_clients_file(tmp_path, capsys):
    broken = tmp_path / "clients.json"
    broken.write_text('{"format": "dkw-clients/1", "clients": [{"id": "a"}]}')
    assert "clients[0]" in only_problem(capsys, "--data", str(tmp_path), "--port", "0", "--clients", str(broken))
    empty = tmp_path / "empty.json"
    add_client(empty, "x", "reader")
    empty.write_text(empty.read_text().replace(empty.read_text()[empty.read_text().index("["):], '[]}'))
    assert "no clients" in only_problem(capsys, "--data", str(tmp_path), "--port", "0", "--clients", str(empty))


def test_a_policy_that_does_not_load(tmp_path, capsys):
    policy = tmp_path / "policy.json"
    policy.write_text('{"format": "dkw-policy/1", "nonsense": 1}')
    assert "--policy" in only_problem(capsys, "--data", str(tmp_path), "--port", "0", "--policy", str(policy))


def test_inconsistent_limits(tmp_path, capsys):
    code, lines, _ = check(capsys, "--data", str(tmp_path), "--port", "0", "--default-time-limit", "100",
                           "--max-time-limit", "10", "--workers", "0", "--lease-seconds", "0", "--drain-seconds", "-1")
    assert code == 2 and len(lines) == 4
    text = "\n".join(lines)
    for flag in ("--default-time-limit 100", "--workers 0", "--lease-seconds 0", "--drain-seconds -1"):
        assert flag in text


def test_a_public_host_without_tls(tmp_path, capsys):
    assert "refusing to listen on 0.0.0.0" in only_problem(capsys, "--host", "0.0.0.0", "--data", str(tmp_path),
                                                          "--port", "0")


def test_ports_in_use(tmp_path, capsys):
    with taken_port() as port:
        assert "--port" in only_problem(capsys, "--data", str(tmp_path), "--port", str(port))
        line = only_problem(capsys, "--data", str(tmp_path), "--port", "0", "--metrics-port", str(port))
        assert line.startswith("dkw serve --check-config: --metrics-port") and "in use" in line


def test_a_data_directory_that_cannot_be_written(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "--data" in only_problem(capsys, "--data", str(blocker / "var"), "--port", "0")


def test_a_schema_newer_than_this_dkw(tmp_path, capsys):
    SqliteStorage(tmp_path).close()
    with sqlite3.connect(tmp_path / "dkw.sqlite3") as db:
        db.execute("INSERT INTO schema_migrations VALUES (99, 'future', 'now')")
    assert "version 99, newer than this dkw" in only_problem(capsys, "--data", str(tmp_path), "--port", "0")


def test_a_database_that_does_not_answer(capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = only_problem(capsys, "--database", f"postgresql://dkw@127.0.0.1:{port}/dkw", "--port", "0")
    assert "does not answer" in line and "dkw@127.0.0.1/dkw" in line


def test_an_empty_client_registry_in_the_database(capsys):
    if not TEST_DATABASE_URL:
        pytest.skip(NO_POSTGRES)
    from conftest import pg_schema

    from dkw.server.postgres import PostgresStorage

    with pg_schema() as url:
        PostgresStorage(url).close()  # migrated, no clients
        line = only_problem(capsys, "--database", url, "--authenticate", "--port", "0")
        assert "client registry is empty" in line
        code, lines, _ = check(capsys, "--database", url, "--port", "0")
        assert (code, lines) == (0, [])


# ---- probes and the audit trail's replica -----------------------------------------------------------

def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.slow
def test_healthz_and_readyz_say_alive_ready_and_why_not(tmp_path):
    running = start_server(port=0, data=str(tmp_path), workers=1, metrics_port=0)
    try:
        assert get(running.metrics_port, "/healthz") == (200, "ok\n")
        assert get(running.metrics_port, "/readyz") == (200, "ready\n")
        worker = running.service.pool.slots[0].process
        os.kill(worker.pid, signal.SIGKILL)
        wait_for(lambda: not worker.is_alive(), what="the worker to die")
        status, text = get(running.metrics_port, "/readyz")
        assert status == 503 and text == "not ready: worker process(es) 0 died\n"
        assert get(running.metrics_port, "/healthz")[0] == 200
        running.service.draining = True
        assert get(running.metrics_port, "/readyz") == (503, "not ready: draining: this replica is shutting down\n")
    finally:
        running.stop()


def poll(read, done, timeout: float = 20.0):
    """`read()` until `done(value)` (the health monitor looks every few seconds), or the last value."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.25)
        value = read()
    return value


@pytest.mark.slow
def test_readyz_says_when_the_database_does_not_answer():
    """Real PostgreSQL: a database of this test's own refuses connections, then takes them again."""
    import psycopg

    with own_database() as (name, url), psycopg.connect(TEST_DATABASE_URL, autocommit=True) as admin:
        running = start_server(port=0, workers=1, metrics_port=0, database=url)
        try:
            assert get(running.metrics_port, "/readyz") == (200, "ready\n")
            # connections already open keep working: refuse new ones and end the server's sessions
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            status, text = poll(lambda: get(running.metrics_port, "/readyz"), lambda r: r[0] == 503)
            assert status == 503 and text.startswith("not ready: the database does not answer"), text
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            assert poll(lambda: get(running.metrics_port, "/readyz"), lambda r: r[0] == 200) == (200, "ready\n")
        finally:
            running.stop()


@pytest.mark.slow
def test_audit_records_name_the_replica_that_handled_the_call(tmp_path):
    import grpc

    from dkw.v1 import clearing_pb2 as pb
    from dkw.v1 import clearing_pb2_grpc as pb_grpc

    running = start_server(port=0, data=str(tmp_path), workers=1)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.ClearingStub(channel)
            stub.ListAuctions(pb.ListAuctionsRequest(), timeout=10)
            records = stub.ListAuditRecords(pb.ListAuditRecordsRequest(), timeout=10).records
        assert records and all(r.server == running.service.owner for r in records)
        assert running.audit.page(limit=1)[0].to_json()["server"] == running.service.owner
    finally:
        running.stop()


# ---- the systemd unit -------------------------------------------------------------------------------

def test_the_systemd_unit_verifies(tmp_path):
    unit = ROOT / "deploy" / "dkw.service"
    text = unit.read_text()
    for setting in ("ExecStart=/usr/local/bin/dkw serve --config /etc/dkw/dkw.toml", "ProtectSystem=strict",
                    "NoNewPrivileges=yes", "PrivateTmp=yes", "KillSignal=SIGTERM", "ReadWritePaths="):
        assert setting in text
    stop = int(next(line for line in text.splitlines() if line.startswith("TimeoutStopSec=")).split("=")[1])
    assert stop > 30 + 15  # the default --drain-seconds, and the stop grace of the hand-back
    tool = shutil.which("systemd-analyze")
    if tool is None:
        print("systemd-analyze is not installed: the unit's settings were checked, `systemd-analyze verify` skipped")
        pytest.skip("systemd-analyze is not installed here")
    copy = tmp_path / "dkw.service"  # verify resolves ExecStart: point it at this dkw
    copy.write_text(text.replace("/usr/local/bin/dkw", shutil.which("dkw") or "/bin/true"))
    out = subprocess.run([tool, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (out.stdout + out.stderr).splitlines() if str(copy) in line or "dkw.service" in line]
    assert out.returncode == 0 and not problems, out.stdout + out.stderr


def test_the_paths_in_the_example_file_and_the_unit_agree():
    assert "/etc/dkw/" in EXAMPLE.read_text() and Path(ROOT / "deploy" / "dkw.service").exists()


def test_the_other_combinations_and_numbers_it_lists(tmp_path, capsys, pki):
    clients = tmp_path / "clients.json"
    add_client(clients, "x", "reader")
    code, lines, _ = check(capsys, "--database", "postgresql://dkw@127.0.0.1:1/dkw", "--clients", str(clients),
                           "--port", "0")  # and that database does not answer: two lines
    assert code == 2 and len(lines) == 2 and "with --database the clients live in the database" in lines[0]
    assert "--tls-client-ca (mutual TLS) needs --tls-cert" in only_problem(
        capsys, "--data", str(tmp_path), "--port", "0", "--tls-client-ca", pki.ca)
    code, lines, _ = check(capsys, "--data", str(tmp_path), "--port", "0", "--max-queued", "0", "--threads", "9",
                           "--max-threads", "2", "--memory-limit", "-5")
    text = "\n".join(lines)
    assert code == 2 and len(lines) == 3 and "--max-queued 0" in text and "--threads 9" in text and "--memory-limit" in text
    with taken_port() as port:
        pass  # a port free again, used twice
    assert "also --port" in only_problem(capsys, "--data", str(tmp_path), "--port", str(port), "--metrics-port", str(port))
