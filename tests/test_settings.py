"""One security configuration per database, one client registry for every replica, and the limits the
server sets on a request's options (issue 23, parts 3 and 4).

Servers run in this process (`start_server`, port 0) except where the exit code and the one line of
`dkw serve` are the point; a refused server never gets as far as listening. The PostgreSQL tests skip
without DKW_TEST_DATABASE_URL (each gets a fresh schema, `pg_url`).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import grpc
import pytest
from conftest import CASES_DIR, code_of
from test_security import Pki

from dkw.clearing.rules import load_policy
from dkw.clearing.signing import new_key_pair
from dkw.cli import main as dkw_main
from dkw.server.auth import read_clients
from dkw.server.client import field_violations
from dkw.server.command import start_server
from dkw.server.limits import Limits
from dkw.server.registry import DatabaseRegistry
from dkw.server.security import ServeSecurity
from dkw.server.settings import SettingsMismatch, policy_sha256, recorded_settings
from dkw.server.tls import open_channel
from dkw.v1 import clearing_pb2 as pb
from dkw.v1 import clearing_pb2_grpc as pb_grpc

SMALL = CASES_DIR / "01-merit-order.json"
VALIDATE = pb.ValidateRequest(auction_json=SMALL.read_bytes())


def stub(server, token: str | None = None, ca: str | None = None) -> pb_grpc.ClearingStub:
    return pb_grpc.ClearingStub(open_channel(f"127.0.0.1:{server.port}", token=token, ca=ca, retries=False))


def new_token(capsys, *args: str) -> str:
    assert dkw_main(["clients", "add", *args]) == 0
    return capsys.readouterr().out.strip()


def serve(**kwargs):
    """A server in this process: port 0, one worker, a short lease (it stops within a second)."""
    return start_server(port=0, workers=1, lease_s=1.5, **kwargs)


def refusal(capsys, *args: str) -> str:
    """`dkw serve ARGS` must refuse to start: exit 2 and exactly one line on stderr, which is returned."""
    assert dkw_main(["serve", "--port", "0", "--workers", "1", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


# ---- limits -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("options, field, words", [
    ({"time_limit_s": math.inf}, "options.time_limit_s", ["Infinity", "3600"]),
    ({"time_limit_s": math.nan}, "options.time_limit_s", ["NaN", "3600"]),
    ({"time_limit_s": -5.0}, "options.time_limit_s", ["-5 s must be above 0"]),
    ({"time_limit_s": 0.0}, "options.time_limit_s", ["above 0"]),
    ({"time_limit_s": 3600.5}, "options.time_limit_s", ["maximum of 3600 s", "--max-time-limit"]),
    ({"threads": 0}, "options.threads", ["1..4"]),
    ({"threads": 5}, "options.threads", ["1..4", "--max-threads"]),
    ({"mip_rel_gap": math.nan}, "options.mip_rel_gap", ["NaN", "[0, 1)"]),
    ({"mip_rel_gap": 1.0}, "options.mip_rel_gap", ["[0, 1)"]),
    ({"method": "magic"}, "options.method", ["'magic'", "fast, straight"]),
])
def test_each_figure_out_of_bounds_is_named_with_its_bound(options, field, words):
    _, problems = Limits(max_threads=4).solve_options(pb.SolveOptions(**options))
    assert [f for f, _ in problems] == [field], problems
    for word in words:
        assert word in problems[0][1], problems


def test_absent_figures_get_the_servers_defaults_and_bounds_that_contradict_are_refused():
    options, problems = Limits(default_time_limit_s=120).solve_options(pb.SolveOptions(), default_threads=2)
    assert problems == [] and options == {"time_limit_s": 120, "threads": 2}
    options, problems = Limits().solve_options(pb.SolveOptions(time_limit_s=3600, threads=1, mip_rel_gap=0))
    assert problems == [] and options["time_limit_s"] == 3600
    for kwargs, flag in [({"default_time_limit_s": 4000}, "--default-time-limit"),
                         ({"max_time_limit_s": math.inf}, "--max-time-limit"), ({"max_threads": -1}, "--max-threads")]:
        with pytest.raises(ValueError, match=flag):
            Limits(**kwargs)


def test_dkw_serve_refuses_bounds_that_contradict_in_one_line(tmp_path, capsys):
    assert "--default-time-limit 4000 must be above 0 and at most --max-time-limit 3600" in refusal(
        capsys, "--data", str(tmp_path), "--default-time-limit", "4000")
    assert "--max-threads" in refusal(capsys, "--data", str(tmp_path), "--threads", "3", "--max-threads", "2")


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    server = serve(data=str(tmp_path_factory.mktemp("var-limits")),
                          limits=Limits(default_time_limit_s=120, max_time_limit_s=600))
    yield server
    server.stop(grace=1)


@pytest.mark.parametrize("limit", [math.inf, math.nan, -1.0, 601.0])
def test_a_request_beyond_the_limits_is_refused_naming_the_field_and_the_maximum(limited, limit):
    request = pb.SubmitAuctionRequest(auction_json=SMALL.read_bytes(), options=pb.SolveOptions(time_limit_s=limit))
    with pytest.raises(grpc.RpcError) as caught:
        stub(limited).SubmitAuction(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (field, why), = field_violations(caught.value)
    assert field == "options.time_limit_s" and "600" in why, why
    assert limited.storage.counts()["QUEUED"] == 0 and not limited.storage.list()  # nothing stored


def test_a_request_without_a_limit_gets_the_servers_default_and_dkw_clear_sends_none(limited, tmp_path, capsys):
    response = stub(limited).SubmitAuction(pb.SubmitAuctionRequest(auction_json=SMALL.read_bytes()), timeout=30)
    assert limited.storage.get(response.auction_id).options["time_limit_s"] == 120
    out = tmp_path / "result.json"
    assert dkw_main(["clear", str(SMALL), "--server", f"127.0.0.1:{limited.port}", "-o", str(out), "-q"]) == 0
    assert json.loads(out.read_text())["solver"]["options"]["time_limit_s"] == 120
    capsys.readouterr()
    for limit in ("7200", "none"):  # above the maximum, or "no limit": the server's bound, said by the server
        assert dkw_main(["clear", str(SMALL), "--server", f"127.0.0.1:{limited.port}", "--time-limit", limit]) == 2
        err = capsys.readouterr().err
        assert "options.time_limit_s" in err and ("maximum of 600 s" in err or "Infinity" in err), err


# ---- recorded settings on SQLite (the same code as on PostgreSQL) ----------------------------------------


@pytest.mark.slow
def test_a_restart_with_other_settings_refuses_and_adopt_settings_records_them(tmp_path, capsys):
    private = tmp_path / "key.pem"
    kid = new_key_pair(private, tmp_path / "key.pub")
    data = str(tmp_path / "var")
    serve(data=data, secure=ServeSecurity(signing_key=str(private))).stop(grace=1)
    line = refusal(capsys, "--data", data)
    assert f"signing_key is {kid} in the database" in line and "but none here (--signing-key)" in line, line
    assert "--adopt-settings" in line
    server = serve(data=data, secure=ServeSecurity(adopt_settings=True))
    try:
        assert recorded_settings(server.storage)["signing_key"][0] == "none"
        records = server.audit.page(limit=10)
        assert [r.detail for r in records if r.method == "AdoptSettings"] == [f"signing_key: {kid} -> none"]
    finally:
        server.stop(grace=1)
    serve(data=data).stop(grace=1)  # the adopted settings are the recorded ones now


def test_the_clients_file_keeps_created_at_and_records_rotated_at(tmp_path, capsys):
    path = tmp_path / "clients.json"
    new_token(capsys, str(path), "tso-a", "--role", "submitter")
    first = read_clients(path)["tso-a"]
    assert first.created_at and not first.rotated_at
    time.sleep(1.1)
    new_token(capsys, str(path), "tso-a", "--role", "submitter")
    again = read_clients(path)["tso-a"]
    assert again.created_at == first.created_at and again.rotated_at > first.created_at
    assert dkw_main(["clients", "list", str(path)]) == 0
    assert f"created {first.created_at}  rotated {again.rotated_at}" in capsys.readouterr().out


def test_a_clients_file_with_a_database_and_authenticate_without_one_are_refused(tmp_path, capsys):
    assert "dkw clients import" in refusal(capsys, "--data", str(tmp_path), "--database", "postgresql://x@127.0.0.1/x",
                                           "--clients", str(tmp_path / "clients.json"))
    assert "with --database URL" in refusal(capsys, "--data", str(tmp_path), "--authenticate")
    assert dkw_main(["clients", "add", str(tmp_path / "c.json"), "x", "--database", "postgresql://", "--role",
                     "reader"]) == 2
    assert "not both" in capsys.readouterr().err


# ---- PostgreSQL: replicas share one registry and one configuration -----------------------------------


@pytest.mark.slow
def test_a_token_rotated_on_one_replica_holds_on_the_other_within_seconds(pg_url, tmp_path, capsys):
    token = new_token(capsys, "--database", pg_url, "tso-a", "--role", "submitter")
    secure = ServeSecurity(authenticate=True)
    a, b = (serve(data=str(tmp_path / name), secure=secure, database=pg_url)
            for name in ("a", "b"))
    try:
        for server in (a, b):
            assert stub(server, token).Validate(VALIDATE, timeout=10).valid
            assert code_of(lambda s=server: stub(s).Validate(VALIDATE, timeout=5)) == grpc.StatusCode.UNAUTHENTICATED
        rotated = new_token(capsys, "--database", pg_url, "tso-a", "--role", "submitter")
        clients = DatabaseRegistry(a.storage).load()
        assert clients["tso-a"].rotated_at and clients["tso-a"].created_at <= clients["tso-a"].rotated_at
        started = time.monotonic()
        while code_of(lambda: stub(b, token).Validate(VALIDATE, timeout=5)) == grpc.StatusCode.OK:
            assert time.monotonic() - started < 10, "the old token still works on the other replica"
            time.sleep(0.2)
        assert code_of(lambda: stub(b, token).Validate(VALIDATE, timeout=5)) == grpc.StatusCode.UNAUTHENTICATED
        for server in (a, b):
            assert stub(server, rotated).Validate(VALIDATE, timeout=10).valid
        assert dkw_main(["clients", "remove", "--database", pg_url, "tso-a"]) == 0
        time.sleep(2.5)
        assert code_of(lambda: stub(a, rotated).Validate(VALIDATE, timeout=5)) == grpc.StatusCode.UNAUTHENTICATED
        assert dkw_main(["clients", "list", "--database", pg_url]) == 0
        assert "tso-a" not in capsys.readouterr().out
    finally:
        a.stop(grace=1)
        b.stop(grace=1)


@pytest.mark.slow
def test_a_mismatched_replica_refuses_to_start_and_adopt_settings_lets_it(pg_url, tmp_path, capsys):
    pki = Pki(tmp_path)
    keys = [tmp_path / f"key{i}.pem" for i in range(2)]
    kids = [new_key_pair(k, k.with_suffix(".pub")) for k in keys]
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"version": "2026-10-01.test"}))
    new_token(capsys, "--database", pg_url, "ops", "--role", "admin")
    tls = ["--tls-cert", pki.server_cert, "--tls-key", pki.server_key]
    first = ServeSecurity(pki.server_cert, pki.server_key, signing_key=str(keys[0]), authenticate=True)
    serve(data=str(tmp_path / "a"), secure=first, database=pg_url).stop(grace=1)
    same = ["--data", str(tmp_path / "b"), "--database", pg_url, "--authenticate", "--signing-key", str(keys[0]), *tls]
    assert f"signing_key is {kids[0]} in the database" in refusal(capsys, *same[:-4], "--signing-key", str(keys[1]), *tls)
    assert "tls is on in the database" in refusal(capsys, *same[:-4])
    assert "policy_sha256 is" in refusal(capsys, *same, "--policy", str(policy))
    line = refusal(capsys, "--data", str(tmp_path / "b"), "--database", pg_url, "--signing-key", str(keys[0]), *tls,
                   "--adopt-settings")  # no authentication on a database with clients: not even on purpose
    assert "registry has 1 client(s)" in line and "--authenticate" in line, line

    adopted = ServeSecurity(pki.server_cert, pki.server_key, signing_key=str(keys[1]), authenticate=True,
                            adopt_settings=True)
    server = serve(data=str(tmp_path / "b"), secure=adopted, database=pg_url, policy=str(policy))
    try:
        recorded = recorded_settings(server.storage)
        assert recorded["signing_key"][0] == kids[1] and recorded["tls"][0] == "on"
        assert recorded["policy_sha256"][0] == policy_sha256(load_policy(str(policy)).data)
        assert any(r.method == "AdoptSettings" and kids[1] in r.detail for r in server.audit.page(limit=20))
    finally:
        server.stop(grace=1)
    capsys.readouterr()  # its start-up's loud log lines
    assert f"signing_key is {kids[1]} in the database" in refusal(capsys, *same)  # the first one's are no longer


@pytest.mark.slow
def test_anonymous_replica_refused_only_once_the_registry_has_clients(pg_url, tmp_path, capsys):
    serve(data=str(tmp_path / "a"), database=pg_url).stop(grace=1)
    new_token(capsys, "--database", pg_url, "tso-a", "--role", "submitter")
    assert "registry has 1 client(s)" in refusal(capsys, "--data", str(tmp_path / "b"), "--database", pg_url)
    with pytest.raises(SettingsMismatch, match="authentication is off in the database"):
        serve(data=str(tmp_path / "b"), database=pg_url,
                     secure=ServeSecurity(authenticate=True))


def test_a_clients_file_imports_into_the_database_and_its_tokens_keep_working(pg_url, tmp_path, capsys):
    path = Path(tmp_path / "clients.json")
    token = new_token(capsys, str(path), "tso-a", "--role", "submitter")
    assert dkw_main(["clients", "import", str(path), "--database", pg_url]) == 0
    server = serve(data=str(tmp_path / "a"), database=pg_url,
                          secure=ServeSecurity(authenticate=True))
    try:
        assert stub(server, token).Validate(VALIDATE, timeout=10).valid
    finally:
        server.stop(grace=1)
