"""The remote commands and the Python client (dkw/remote_commands.py, the dkw/client package) against one real
`dkw serve` with TLS, a clients file and a signing key (test_security's certificates and clients): each
command's arguments and exit codes, the client's exception classes, the targets it accepts, and the
Python example of docs/api.md run as it is written.

Time budget: one server start (SQLite), small cases only; the commands run in this process (dkw.cli.main)
except where a fresh interpreter is the point (the example, which modules get loaded).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from conftest import CASES_DIR
from test_security import Server, pki, signing_keys, tokens  # noqa: F401  (module-scoped fixtures)

from dkw.cli import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_PERMISSION_DENIED,
    EXIT_UNAUTHENTICATED,
    EXIT_UNREACHABLE,
    build_parser,
)
from dkw.cli import main as dkw_main
from dkw.client import Client, ConfigError, Denied, InvalidRequest, NotFound, parse_target
from dkw.v1 import clearing_pb2 as pb

ROOT = Path(__file__).resolve().parent.parent
SMALL = str(CASES_DIR / "01-merit-order.json")


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki, tokens, signing_keys):  # noqa: F811
    served = Server(tmp_path_factory.mktemp("var-remote"), "--tls-cert", pki.server_cert, "--tls-key",
                    pki.server_key, "--clients", str(tokens[0]), "--signing-key", signing_keys[0])
    yield served
    if served.process.poll() is None:
        served.stop()


@pytest.fixture
def dkw(server, pki, tokens, capsys, monkeypatch):  # noqa: F811
    """`dkw ARGS` in this process against the server as client `who`: (exit code, stdout, stderr)."""
    monkeypatch.delenv("DKW_TOKEN", raising=False)

    def run(*args: str, who: str | None = "tso-a", connect: bool = True) -> tuple[int, str, str]:
        extra = ["--server", server.target, "--tls-ca", pki.ca] if connect else []
        if who is not None:
            extra += ["--token", tokens[1][who]]
        capsys.readouterr()
        try:
            code = dkw_main([*args, *extra])
        except SystemExit as exc:  # argparse
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


def submitted(dkw, path: str = SMALL) -> str:
    code, out, err = dkw("submit", path)
    assert code == EXIT_OK, err
    return out.strip()


# ---- every RPC has its command ------------------------------------------------------------------------


def test_every_rpc_has_a_command_with_the_same_connection_flags():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    by_rpc = {"Clear": "clear", "SubmitAuction": "submit", "GetResult": "result", "ListAuctions": "list",
              "WatchClearing": "watch", "Validate": "validate", "CancelClearing": "cancel", "ListAuditRecords": "audit"}
    assert set(by_rpc) == {m.name for m in pb.DESCRIPTOR.services_by_name["Clearing"].methods}
    flags = {"--server", "--tls-ca", "--tls-cert", "--tls-key", "--token", "--tls-server-name", "--insecure"}
    for name in {*by_rpc.values(), "status"}:
        options = {o for a in commands[name]._actions for o in a.option_strings}
        assert flags <= options, (name, flags - options)


# ---- arguments: refused with exit 2 before anything is sent --------------------------------------------


@pytest.mark.parametrize("args, says", [
    (["submit", SMALL, "--time-limit", "0"], "is not a number of seconds above 0"),
    (["list", "--since", "yesterday"], "is not a date"),
    (["list", "--state", "BOGUS"], "invalid choice"),
    (["status"], "the following arguments are required: ID"),
    (["submit", "missing.json"], "missing.json: cannot read"),
    (["result", "auc_x", "-o", "/nonexistent-dir/r.json"], "the directory /nonexistent-dir does not exist"),
    (["validate", SMALL, "--policy", "p.json"], "a server judges under its own policy"),
    (["audit", "--database", "postgresql://dkw@db.example/dkw"], "give --server or --database, not both"),
    (["audit", "--limit", "0"], "--limit 0 must be at least 1"),
])
def test_bad_arguments_exit_2_with_one_line(dkw, args, says):
    code, _, err = dkw(*args)
    assert code == EXIT_BAD_INPUT and says in err, err


def test_submit_without_server_and_unusable_targets_and_files_exit_2(dkw, pki, tmp_path):  # noqa: F811
    code, _, err = dkw("submit", SMALL, connect=False, who=None)
    assert code == EXIT_BAD_INPUT and "--server" in err
    for server, says in [("nowhere", "is not HOST:PORT"), ("127.0.0.1:1,::1:2", "is not HOST:PORT"),
                         ("127.0.0.1:1,[::1]:2", "mixes IPv4 and IPv6")]:
        code, _, err = dkw("status", "auc_x", "--server", server, connect=False, who=None)
        assert code == EXIT_BAD_INPUT and says in err, (server, err)
    code, _, err = dkw("status", "auc_x", "--server", "127.0.0.1:1", "--tls-ca", str(tmp_path / "no.pem"),
                       connect=False, who=None)
    assert code == EXIT_BAD_INPUT and "--tls-ca" in err and "cannot read" in err
    code, _, err = dkw("status", "auc_x", "--server", "127.0.0.1:1", "--tls-cert", pki.client_cert, "--tls-key",
                       pki.client_key, connect=False, who=None)
    assert code == EXIT_BAD_INPUT and "need TLS" in err


# ---- exit codes of refusals and connection failures ----------------------------------------------------


def test_refusals_exit_with_their_own_codes(dkw, server):
    ident = submitted(dkw)
    assert dkw("status", ident, who=None)[0] == EXIT_UNAUTHENTICATED
    code, _, err = dkw("status", ident, "--token", "dkw_bogus_token", who=None)
    assert code == EXIT_UNAUTHENTICATED and "UNAUTHENTICATED" in err
    assert dkw("submit", SMALL, who="monitor")[0] == EXIT_PERMISSION_DENIED
    code, _, err = dkw("audit", who="tso-a")
    assert code == EXIT_PERMISSION_DENIED and "may not call ListAuditRecords" in err
    for command in ("status", "result", "watch", "cancel"):
        code, _, err = dkw(command, "auc_nope")
        assert code == EXIT_NOT_FOUND and "no auction 'auc_nope'" in err, (command, err)
    # another submitter's auction is not found either (NOT_FOUND, not PERMISSION_DENIED)
    assert dkw("status", ident, who="tso-b")[0] == EXIT_NOT_FOUND


def test_an_invalid_auction_lists_every_problem_and_exits_2(dkw, tmp_path):
    bad = json.loads(Path(SMALL).read_text())
    bad["bids"][0]["min_kw"] = 10 ** 9
    bad["areas"].append(bad["areas"][0])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    code, _, err = dkw("submit", str(path))
    assert code == EXIT_BAD_INPUT and "nothing was stored" in err and "bids[0].min_kw" in err, err
    code, out, _ = dkw("validate", str(path), "--json")
    shown = json.loads(out)
    assert code == EXIT_BAD_INPUT and not shown["valid"] and {p["path"] for p in shown["problems"]} >= {"bids[0].min_kw"}


def test_nothing_listening_and_plaintext_against_tls_exit_3(dkw, server):
    code, _, err = dkw("status", "auc_x", "--server", "127.0.0.1:1,127.0.0.1:2", connect=False, who=None)
    assert code == EXIT_UNREACHABLE and "no replica can be reached" in err and "127.0.0.1:2" in err, err
    code, _, err = dkw("list", "--server", server.target, connect=False, who=None)
    assert code == EXIT_UNREACHABLE and "speaks TLS" in err, err


# ---- a day's commands over TLS -------------------------------------------------------------------------


@pytest.mark.slow
def test_submit_watch_status_result_list_cancel_and_audit(dkw, signing_keys, tmp_path):  # noqa: F811
    code, out, _ = dkw("submit", SMALL, "--key", "day-1", "--json")
    first = json.loads(out)
    assert code == EXIT_OK and first["created"] and first["idempotency_key"] == "day-1"
    code, out, err = dkw("submit", SMALL, "--key", "day-1")
    assert code == EXIT_OK and out.strip() == first["auction_id"] and "nothing new was stored" in err
    ident = first["auction_id"]
    code, out, err = dkw("watch", ident)
    assert code == EXIT_OK and "DONE" in out and "OPTIMAL" in out and "incumbent" in err, (out, err)
    code, out, _ = dkw("status", ident, "--json")
    assert code == EXIT_OK and json.loads(out)["state"] == "DONE" and json.loads(out)["status"] == "OPTIMAL"
    written = tmp_path / "result.json"
    code, _, err = dkw("result", ident, "-o", str(written), "--public-key", signing_keys[1])
    assert code == EXIT_OK and "signature valid" in err
    doc = json.loads(written.read_text())
    assert doc["status"] == "OPTIMAL" and doc["signature"]["jws"]
    # the file verifies again offline, and another key is refused
    verified = subprocess.run([sys.executable, "-m", "dkw", "verify", SMALL, str(written), "--public-key",
                               signing_keys[1]], cwd=ROOT, capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    other = tmp_path / "other.pub.pem"
    subprocess.run([sys.executable, "-m", "dkw", "keys", "new", str(tmp_path / "other.pem"), str(other)], cwd=ROOT,
                   check=True, capture_output=True)
    code, _, err = dkw("result", ident, "--public-key", str(other))
    assert code == EXIT_FAILED and "signature check failed" in err
    code, out, _ = dkw("list", "--json")
    listed = [json.loads(line) for line in out.splitlines()]
    assert code == EXIT_OK and ident in {a["auction_id"] for a in listed}
    code, out, _ = dkw("list", "--since", "2999-01-01")
    assert code == EXIT_OK and out == ""
    code, out, _ = dkw("list", "--state", "QUEUED", "--json")
    assert code == EXIT_OK and ident not in out
    code, out, _ = dkw("cancel", ident)  # already DONE: cancelling is idempotent, the result stays
    assert code == EXIT_OK and "DONE" in out and "kept" in out
    code, out, _ = dkw("audit", "--client", "tso-a", "--json", "--limit", "500", who="ops")
    methods = [json.loads(line)["method"] for line in out.splitlines()]
    assert code == EXIT_OK and {"SubmitAuction", "WatchClearing", "GetResult", "CancelClearing"} <= set(methods)
    code, out, _ = dkw("audit", "--limit", "3", who="ops")
    assert code == EXIT_OK and len(out.splitlines()) == 3


def test_clear_and_validate_through_the_server(dkw, tmp_path):
    out_file = tmp_path / "cleared.json"
    code, _, err = dkw("clear", SMALL, "-q", "-o", str(out_file))
    assert code == EXIT_OK, err
    assert json.loads(out_file.read_text())["status"] == "OPTIMAL"
    code, out, _ = dkw("validate", SMALL)
    assert code == EXIT_OK and "valid (4 bids" in out


# ---- the client's errors and targets ------------------------------------------------------------------


def test_the_clients_errors_carry_the_code_the_exit_code_and_the_violations(server, pki, tokens):  # noqa: F811
    bad = json.loads(Path(SMALL).read_text())
    bad["bids"][0]["kw"] = -1
    with Client(server.target, tls_ca=pki.ca, token=tokens[1]["tso-a"]) as client:
        with pytest.raises(InvalidRequest) as invalid:
            client.submit(bad)
        assert invalid.value.code == grpc.StatusCode.INVALID_ARGUMENT and invalid.value.exit_code == EXIT_BAD_INPUT
        assert "bids[0].kw" in {field for field, _ in invalid.value.violations}
        with pytest.raises(InvalidRequest) as limit:
            client.submit(Path(SMALL), time_limit=10 ** 6)
        assert [f for f, _ in limit.value.violations] == ["options.time_limit_s"]
        with pytest.raises(NotFound) as missing:
            client.result("auc_nope")
        assert (missing.value.code, missing.value.exit_code) == (grpc.StatusCode.NOT_FOUND, EXIT_NOT_FOUND)
    with Client(server.target, tls_ca=pki.ca, token=tokens[1]["monitor"]) as client, pytest.raises(Denied) as denied:
        client.audit().__next__()
    assert (denied.value.code, denied.value.exit_code) == (grpc.StatusCode.PERMISSION_DENIED, EXIT_PERMISSION_DENIED)


def test_targets_one_replica_several_and_names_resolved_once():
    assert parse_target("localhost:7443").grpc_target == "localhost:7443" and parse_target("localhost:7443").loopback
    several = parse_target("127.0.0.1:7443, 127.0.0.2:7444")
    assert (several.grpc_target, several.authority, several.loopback) == (
        "ipv4:127.0.0.1:7443,127.0.0.2:7444", "127.0.0.1:7443", True)
    named = parse_target("localhost:7443,127.0.0.1:7444")
    assert named.grpc_target.startswith(("ipv4:127.0.0.1:7443", "ipv6:[::1]:7443")) and named.authority == "localhost:7443"
    assert not parse_target("dkw.example:7443").loopback  # TLS by default off this machine
    assert parse_target("[::1]:1,[::1]:2").grpc_target == "ipv6:[::1]:1,[::1]:2"
    with pytest.raises(ConfigError, match="not HOST:PORT"):
        parse_target("a:1,b")
    with pytest.raises(ConfigError, match="cannot resolve 'nosuchhost.invalid'"):
        parse_target("127.0.0.1:1,nosuchhost.invalid:2")


def test_a_server_elsewhere_is_reached_by_tls_unless_insecure():
    """Without --tls-ca, a target off this machine gets TLS trusting the default roots (nothing is sent
    here: 192.0.2.1 is a documentation address); plaintext only with insecure=True."""
    with Client("192.0.2.1:7443") as client:
        assert client._endpoint.system_roots
    with Client("192.0.2.1:7443", insecure=True) as client:
        assert not client._endpoint.system_roots
    with Client("127.0.0.1:7443") as client:
        assert not client._endpoint.system_roots


# ---- the docs' example, and no solver loaded ----------------------------------------------------------


def test_the_python_example_in_docs_api_runs(server, pki, tokens, signing_keys):  # noqa: F811
    text = (ROOT / "docs" / "api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "docs/api.md has one Python example"
    env = {**os.environ, "DKW_SERVER": server.target, "DKW_TLS_CA": pki.ca, "DKW_TOKEN": tokens[1]["tso-a"],
           "DKW_PUBLIC_KEY": signing_keys[1]}
    proc = subprocess.run([sys.executable, "-c", blocks[0]], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("stored as auc_") and "DONE" in proc.stdout and "OPTIMAL" in proc.stdout
    assert lines[-1] == "StatusCode.NOT_FOUND 6"


def test_the_client_and_the_remote_commands_load_no_solver():
    code = ("import sys, dkw.client, dkw.remote_commands\n"
            "from dkw.cli import main\n"
            "try:\n    main(['watch', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('pyomo', 'highspy') if m in sys.modules), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr


def test_list_and_audit_page_through_every_page(server, pki, tokens, dkw):  # noqa: F811
    for _ in range(3):
        submitted(dkw)
    with Client(server.target, tls_ca=pki.ca, token=tokens[1]["tso-a"]) as client:
        whole = [a.auction_id for a in client.list(page_size=1000)]
        assert len(whole) >= 3 and [a.auction_id for a in client.list(page_size=1)] == whole
    with Client(server.target, tls_ca=pki.ca, token=tokens[1]["ops"]) as client:
        records = [r["record_id"] for r in client.audit(client_id="tso-a", page_size=1000)]
        assert len(records) > 5 and [r["record_id"] for r in client.audit(client_id="tso-a", page_size=2)] == records
