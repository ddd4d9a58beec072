"""Security end to end: real `dkw serve` processes with TLS, mutual TLS, a clients file and a signing key;
real channels. Certificates are made here, at test time (a CA, a server certificate, client certificates,
and a second, untrusted CA).

Time budget: three server starts (TLS, its restart, mutual TLS) and small cases only; the only solve that
takes a while is a generated auction with a 2-second time limit that keeps one client at its limit.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from conftest import CASES_DIR, code_of
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from dkw.clearing.canonical import jcs
from dkw.clearing.signing import check_signature, load_private_key, load_public_key, sign_document
from dkw.cli import main as dkw_main
from dkw.server.auth import add_client, read_clients
from dkw.server.tls import open_channel as retrying_channel
from dkw.v1 import clearing_pb2 as pb
from dkw.v1 import clearing_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
SMALL = CASES_DIR / "01-merit-order.json"
METHODS = [m.name for m in pb.DESCRIPTOR.services_by_name["Clearing"].methods]


# ---- certificates -----------------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dkw test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certificate(subject: str, key, issuer_name: x509.Name, issuer_key, *, ca: bool = False,
                 san: list[x509.GeneralName] | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class Pki:
    """A CA with a server certificate (127.0.0.1, localhost) and client certificates, plus an untrusted CA."""

    def __init__(self, where: Path):
        self.dir = where
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _certificate("dkw test CA", ca_key, _name("dkw test CA"), ca_key, ca=True)
        self.ca = self._write("ca.pem", ca.public_bytes(serialization.Encoding.PEM))
        self.server_cert, self.server_key = self._leaf("server", "dkw server", ca, ca_key, san=[
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        self.client_cert, self.client_key = self._leaf("tso-a", "tso-a", ca, ca_key)
        rogue_key = ec.generate_private_key(ec.SECP256R1())
        rogue = _certificate("rogue CA", rogue_key, _name("rogue CA"), rogue_key, ca=True)
        self.rogue_ca = self._write("rogue-ca.pem", rogue.public_bytes(serialization.Encoding.PEM))
        self.rogue_cert, self.rogue_key = self._leaf("rogue-tso-a", "tso-a", rogue, rogue_key)

    def _write(self, name: str, data: bytes) -> str:
        path = self.dir / name
        path.write_bytes(data)
        return str(path)

    def _leaf(self, file: str, cn: str, ca: x509.Certificate, ca_key, san=None) -> tuple[str, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(cn, key, ca.subject, ca_key, san=san)
        return (self._write(f"{file}.pem", cert.public_bytes(serialization.Encoding.PEM)),
                self._write(f"{file}-key.pem", _pem_key(key)))


# ---- servers ----------------------------------------------------------------------------------------


class Server:
    """A `dkw serve` child process with its log in a file."""

    def __init__(self, data: Path, *args: str, port: int = 0):
        self.data = data
        data.mkdir(parents=True, exist_ok=True)
        self.log_path = data / "serve.log"
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dkw", "serve", "--port", str(port), "--data", str(data), "--workers", "1", *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.process.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if match is None:
            self.process.kill()
            raise RuntimeError(f"dkw serve did not start: {line!r} {self.log_path.read_text()}")
        self.port = int(match.group(1))
        self.target = f"127.0.0.1:{self.port}"

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            self.process.stdout.close()
            self.log.close()
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tokens(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("clients") / "clients.json"
    tokens = {cid: add_client(path, cid, role, max_active)
              for cid, role, max_active in [("tso-a", "submitter", None), ("tso-b", "submitter", 1),
                                            ("monitor", "reader", None), ("ops", "admin", None)]}
    return path, tokens


@pytest.fixture(scope="module")
def signing_keys(tmp_path_factory) -> tuple[str, str]:
    where = tmp_path_factory.mktemp("keys")
    private, public = str(where / "result-signing.pem"), str(where / "result-signing.pub.pem")
    out = subprocess.run([sys.executable, "-m", "dkw", "keys", "new", private, public], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    return private, public


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, pki, tokens, signing_keys):
    server = Server(tmp_path_factory.mktemp("var-tls"), "--tls-cert", pki.server_cert, "--tls-key", pki.server_key,
                    "--clients", str(tokens[0]), "--signing-key", signing_keys[0])
    yield server
    if server.process.poll() is None:
        server.stop()


def open_channel(*args, **kwargs) -> grpc.Channel:
    """A channel without the client's retries: these tests look at what the server answers each call."""
    return retrying_channel(*args, retries=False, **kwargs)


def stub_for(server: Server, pki: Pki, token: str | None) -> pb_grpc.ClearingStub:
    return pb_grpc.ClearingStub(open_channel(server.target, ca=pki.ca, token=token))


def submit(stub, path: Path = SMALL, **options) -> pb.SubmitAuctionResponse:
    return stub.SubmitAuction(pb.SubmitAuctionRequest(auction_json=path.read_bytes(),
                                                      options=pb.SolveOptions(**options)), timeout=30)


# ---- transport --------------------------------------------------------------------------------------


def test_tls_works_plaintext_and_the_wrong_ca_do_not(tls_server, pki, tokens):
    token = tokens[1]["tso-a"]
    ok = stub_for(tls_server, pki, token).Validate(pb.ValidateRequest(auction_json=SMALL.read_bytes()), timeout=10)
    assert ok.valid
    plaintext = pb_grpc.ClearingStub(open_channel(tls_server.target, token=token))
    assert code_of(lambda: plaintext.Validate(pb.ValidateRequest(auction_json=b"{}"), timeout=5)) == \
        grpc.StatusCode.UNAVAILABLE
    wrong_ca = pb_grpc.ClearingStub(open_channel(tls_server.target, ca=pki.rogue_ca, token=token))
    assert code_of(lambda: wrong_ca.Validate(pb.ValidateRequest(auction_json=b"{}"), timeout=5)) == \
        grpc.StatusCode.UNAVAILABLE


@pytest.mark.slow
def test_mutual_tls_requires_a_certificate_from_the_ca_and_its_subject_names_the_client(
        tmp_path, pki, tokens):
    server = Server(tmp_path / "var-mtls", "--tls-cert", pki.server_cert, "--tls-key", pki.server_key,
                    "--tls-client-ca", pki.ca, "--clients", str(tokens[0]))
    try:
        request = pb.ValidateRequest(auction_json=SMALL.read_bytes())
        no_cert = pb_grpc.ClearingStub(open_channel(server.target, ca=pki.ca, token=tokens[1]["tso-a"]))
        assert code_of(lambda: no_cert.Validate(request, timeout=5)) == grpc.StatusCode.UNAVAILABLE
        rogue = pb_grpc.ClearingStub(open_channel(server.target, ca=pki.ca, cert=pki.rogue_cert, key=pki.rogue_key))
        assert code_of(lambda: rogue.Validate(request, timeout=5)) == grpc.StatusCode.UNAVAILABLE
        # a certificate with CN=tso-a is client tso-a without any token
        by_cert = pb_grpc.ClearingStub(open_channel(server.target, ca=pki.ca, cert=pki.client_cert,
                                                    key=pki.client_key))
        assert by_cert.Validate(request, timeout=10).valid
        assert code_of(lambda: by_cert.ListAuditRecords(pb.ListAuditRecordsRequest(), timeout=5)) == \
            grpc.StatusCode.PERMISSION_DENIED  # tso-a is a submitter
        admin = pb_grpc.ClearingStub(open_channel(server.target, ca=pki.ca, cert=pki.client_cert,
                                                  key=pki.client_key, token=tokens[1]["ops"]))
        records = admin.ListAuditRecords(pb.ListAuditRecordsRequest(), timeout=5).records
        assert [(r.client_id, r.method, r.status_code) for r in reversed(records)] == [
            ("tso-a", "Validate", "OK"), ("tso-a", "ListAuditRecords", "PERMISSION_DENIED")]
    finally:
        assert server.stop() == 0


def test_a_second_server_on_the_same_port_exits_with_one_clear_line(tls_server, tmp_path):
    out = subprocess.run([sys.executable, "-m", "dkw", "serve", "--port", str(tls_server.port), "--data",
                          str(tmp_path / "other")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "in use" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_ports_outside_the_range_and_public_plaintext_are_refused(tmp_path, capsys):
    for args, message in [(["--port", "99999"], "outside 1-65535"), (["--port", "-1"], "outside 1-65535"),
                          (["--host", "0.0.0.0", "--port", "0"], "refusing to listen on 0.0.0.0")]:
        try:
            code = dkw_main(["serve", "--data", str(tmp_path), *args])
        except SystemExit as exc:  # argparse refuses a bad --port itself
            code = exc.code
        assert code == 2, args
        assert message in capsys.readouterr().err, args


# ---- authentication and roles ---------------------------------------------------------------------


def test_each_role_gets_what_it_may_and_is_refused_the_rest(tls_server, pki, tokens):
    t = tokens[1]
    a, b = stub_for(tls_server, pki, t["tso-a"]), stub_for(tls_server, pki, t["tso-b"])
    reader, admin = stub_for(tls_server, pki, t["monitor"]), stub_for(tls_server, pki, t["ops"])
    validate = pb.ValidateRequest(auction_json=SMALL.read_bytes())

    assert code_of(lambda: stub_for(tls_server, pki, None).Validate(validate, timeout=5)) == \
        grpc.StatusCode.UNAUTHENTICATED
    forged = t["tso-a"][:-4] + "AAAA"
    assert code_of(lambda: stub_for(tls_server, pki, forged).Validate(validate, timeout=5)) == \
        grpc.StatusCode.UNAUTHENTICATED
    # health stays open
    health = health_pb2_grpc.HealthStub(open_channel(tls_server.target, ca=pki.ca))
    assert health.Check(health_pb2.HealthCheckRequest(service="dkw.v1.Clearing"), timeout=5).status == \
        health_pb2.HealthCheckResponse.SERVING

    mine = submit(a).auction_id
    assert a.GetResult(pb.GetResultRequest(auction_id=mine), timeout=10).auction_id == mine
    # another submitter: the auction does not exist for it, by any method
    assert code_of(lambda: b.GetResult(pb.GetResultRequest(auction_id=mine), timeout=5)) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: list(b.WatchClearing(pb.WatchRequest(auction_id=mine), timeout=5))) == \
        grpc.StatusCode.NOT_FOUND
    assert mine not in [x.auction_id for x in b.ListAuctions(pb.ListAuctionsRequest(), timeout=5).auctions]
    # the reader sees everything, submits nothing, may not read the audit trail
    assert mine in [x.auction_id for x in reader.ListAuctions(pb.ListAuctionsRequest(), timeout=5).auctions]
    last = list(reader.WatchClearing(pb.WatchRequest(auction_id=mine), timeout=60))[-1]
    assert last.state == pb.DONE
    for call in (lambda: reader.Validate(validate, timeout=5), lambda: submit(reader),
                 lambda: reader.ListAuditRecords(pb.ListAuditRecordsRequest(), timeout=5)):
        assert code_of(call) == grpc.StatusCode.PERMISSION_DENIED
    # the submitter may not read the audit trail either; the admin may do everything
    assert code_of(lambda: a.ListAuditRecords(pb.ListAuditRecordsRequest(), timeout=5)) == \
        grpc.StatusCode.PERMISSION_DENIED
    assert admin.GetResult(pb.GetResultRequest(auction_id=mine), timeout=5).state == pb.DONE
    assert admin.ListAuditRecords(pb.ListAuditRecordsRequest(page_size=1), timeout=5).next_page_token


def test_rotating_and_removing_a_client_take_effect_without_a_restart(tls_server, pki, tokens, capsys):
    path = tokens[0]
    request = pb.ValidateRequest(auction_json=SMALL.read_bytes())

    def add() -> str:
        assert dkw_main(["clients", "add", str(path), "rotating", "--role", "submitter"]) == 0
        out = capsys.readouterr()
        assert re.fullmatch(r"dkw_[0-9a-f]+_[\w-]+\n", out.out), out  # the token alone on stdout
        return out.out.strip()

    old = add()
    assert old not in path.read_text() and read_clients(path)["rotating"].token_hash.startswith("scrypt$")
    assert stub_for(tls_server, pki, old).Validate(request, timeout=10).valid
    new = add()
    assert new != old
    assert code_of(lambda: stub_for(tls_server, pki, old).Validate(request, timeout=5)) == \
        grpc.StatusCode.UNAUTHENTICATED
    assert stub_for(tls_server, pki, new).Validate(request, timeout=10).valid
    assert dkw_main(["clients", "remove", str(path), "rotating"]) == 0
    assert code_of(lambda: stub_for(tls_server, pki, new).Validate(request, timeout=5)) == \
        grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.slow
def test_a_client_at_its_limit_gets_resource_exhausted_with_a_retry_delay(tls_server, pki, tokens, slow_auction):
    b = stub_for(tls_server, pki, tokens[1]["tso-b"])  # max_active 1
    # calls arriving together cannot all pass the same count: exactly one of four is admitted
    together = [b.SubmitAuction.future(pb.SubmitAuctionRequest(auction_json=slow_auction,
                                                               options=pb.SolveOptions(time_limit_s=2)), timeout=30)
                for _ in range(4)]
    codes = [code_of(f.result) for f in together]
    assert sorted(c.name for c in codes) == ["OK"] + ["RESOURCE_EXHAUSTED"] * 3, codes
    first = next(f.result() for f, c in zip(together, codes, strict=True) if c == grpc.StatusCode.OK)
    with pytest.raises(grpc.RpcError) as refused:
        submit(b)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "tso-b" in refused.value.details()
    retry = [d for d in rpc_status.from_call(refused.value).details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    assert len(retry) == 1
    info = error_details_pb2.RetryInfo()
    retry[0].Unpack(info)
    assert info.retry_delay.seconds > 0
    # another client is not held back by tso-b's limit
    assert submit(stub_for(tls_server, pki, tokens[1]["tso-a"])).created
    final = list(b.WatchClearing(pb.WatchRequest(auction_id=first.auction_id), timeout=120))[-1]
    assert final.state in (pb.DONE, pb.FAILED)
    assert submit(b).created  # below its limit again


# ---- signed results ---------------------------------------------------------------------------------


def test_a_signed_result_verifies_and_fails_after_any_change_to_one_figure(tls_server, pki, tokens, signing_keys,
                                                                           tmp_path):
    result_path = tmp_path / "result.json"
    env = {**os.environ, "DKW_TOKEN": tokens[1]["tso-a"]}
    out = subprocess.run([sys.executable, "-m", "dkw", "clear", str(SMALL), "--server", tls_server.target,
                          "--tls-ca", pki.ca, "-o", str(result_path), "-q"], cwd=ROOT, capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    doc = json.loads(result_path.read_text())
    assert doc["signature"]["algorithm"] == "EdDSA" and doc["signature"]["canonicalization"] == "RFC8785"
    verify = [sys.executable, "-m", "dkw", "verify", str(SMALL), str(result_path), "--public-key", signing_keys[1]]
    ok = subprocess.run(verify, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "signature valid" in ok.stdout, ok.stderr

    altered = json.loads(json.dumps(doc))
    altered["awards"][0]["payment_yen"] += 1
    result_path.write_text(json.dumps(altered))
    bad = subprocess.run(verify, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "signature check failed" in bad.stderr, bad.stderr

    # any one figure, anywhere in the document (fields added later included), breaks the signature
    public = load_public_key(signing_keys[1])
    assert check_signature(doc, public) is None
    for path in [("objective_yen",), ("awards", 0, "kw"), ("prices", 0, "marginal_yen_per_kw_h"),
                 ("area_summary", 0, "offered_kw"), ("solver", "seconds")]:
        changed = json.loads(json.dumps(doc))
        target = changed
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = (target[path[-1]] or 0) + 0.5
        assert check_signature(changed, public) is not None, path
    assert check_signature({**doc, "explanations": []}, public) is not None
    # whole-number doubles (as gRPC carries them) sign the same as the file's integers
    assert jcs({"a": 12000.0, "b": [1.5]}) == jcs({"b": [1.5], "a": 12000}) == b'{"a":12000,"b":[1.5]}'
    other = sign_document(doc, load_private_key(signing_keys[0]))  # Ed25519 is deterministic
    assert check_signature(other, public) is None and other["signature"] == doc["signature"]
    header, payload, signature = doc["signature"]["jws"].split(".")
    assert payload == "" and len(base64.urlsafe_b64decode(signature + "==")) == 64


# ---- bad bytes ----------------------------------------------------------------------------------------


def test_random_bytes_to_every_method_leave_the_server_healthy_and_the_log_clean(tls_server, pki, tokens):
    channel = open_channel(tls_server.target, ca=pki.ca, token=tokens[1]["ops"])
    rng = random.Random(10)
    for method in METHODS:
        streaming = method == "WatchClearing"
        call = (channel.unary_stream if streaming else channel.unary_unary)(f"/dkw.v1.Clearing/{method}")
        for _ in range(25):
            data = rng.randbytes(rng.randrange(1, 200))
            try:
                response = call(data, timeout=10)
                if streaming:
                    list(response)
            except grpc.RpcError as exc:
                assert exc.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (method, exc)
    health = health_pb2_grpc.HealthStub(channel)
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    assert code_of(lambda: check(b"\xff\xff\xff", timeout=5)) == grpc.StatusCode.INVALID_ARGUMENT
    # an oversized message: refused by size, not parsed
    big = grpc.secure_channel(tls_server.target, grpc.ssl_channel_credentials(Path(pki.ca).read_bytes()),
                              options=[("grpc.max_send_message_length", -1)])
    oversized = big.unary_unary("/dkw.v1.Clearing/Validate")
    assert code_of(lambda: oversized(b"\x12" + b"\x00" * (65 * 1024 * 1024), timeout=30)) == \
        grpc.StatusCode.RESOURCE_EXHAUSTED
    big.close()
    assert health.Check(health_pb2.HealthCheckRequest(service="dkw.v1.Clearing"), timeout=5).status == \
        health_pb2.HealthCheckResponse.SERVING
    log = tls_server.log_path.read_text()
    assert "Traceback" not in log and "does not parse" in log


# ---- the audit trail --------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_audit_trail_lists_refused_and_accepted_calls_and_survives_a_restart(tls_server, pki, tokens, signing_keys,
                                                                                tmp_path):
    t = tokens[1]
    code_of(lambda: stub_for(tls_server, pki, None).ListAuctions(pb.ListAuctionsRequest(), timeout=5))
    code_of(lambda: submit(stub_for(tls_server, pki, t["monitor"])))
    accepted = submit(stub_for(tls_server, pki, t["tso-a"])).auction_id
    admin = stub_for(tls_server, pki, t["ops"])

    def trail(stub) -> list[pb.AuditRecord]:
        records, token = [], ""
        while True:
            page = stub.ListAuditRecords(pb.ListAuditRecordsRequest(page_size=50, page_token=token), timeout=10)
            records += page.records
            token = page.next_page_token
            if not token:
                return records

    before = trail(admin)
    seen = {(r.client_id, r.method, r.status_code, r.auction_id) for r in before}
    assert ("anonymous", "ListAuctions", "UNAUTHENTICATED", "") in seen
    assert ("monitor", "SubmitAuction", "PERMISSION_DENIED", "") in seen
    assert ("tso-a", "SubmitAuction", "OK", accepted) in seen
    assert all(r.peer.startswith("ipv4:127.0.0.1:") and r.at for r in before)
    assert [r.record_id for r in before] == sorted((r.record_id for r in before), reverse=True)

    assert tls_server.stop() == 0
    offline = subprocess.run([sys.executable, "-m", "dkw", "audit", "--data", str(tls_server.data), "--json"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert offline.returncode == 0, offline.stderr
    lines = [json.loads(line) for line in offline.stdout.splitlines()]
    assert {r["record_id"] for r in lines} >= {r.record_id for r in before}

    again = Server(tls_server.data, "--tls-cert", pki.server_cert, "--tls-key", pki.server_key, "--clients",
                   str(tokens[0]), "--signing-key", signing_keys[0])  # the same settings (dkw.server.settings)
    try:
        after = trail(pb_grpc.ClearingStub(open_channel(again.target, ca=pki.ca, token=t["ops"])))
        assert {r.record_id for r in after} >= {r.record_id for r in before}
        stored = pb_grpc.ClearingStub(open_channel(again.target, ca=pki.ca, token=t["tso-a"]))
        assert stored.GetResult(pb.GetResultRequest(auction_id=accepted), timeout=10).auction_id == accepted
    finally:
        assert again.stop() == 0


# ---- without a server ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["06-composite", "11-cap-dc-interface"])
def test_a_signature_survives_the_trip_through_the_grpc_message(name, signing_keys):
    """The service signs the stored document; the caller gets it back through ClearingResult (doubles, a
    Struct for the rules' sections): the signature must still verify there."""
    from dkw.clearing.document import load_auction_file
    from dkw.clearing.engine import clear
    from dkw.server.convert import result_document, result_message

    signed = sign_document(clear(load_auction_file(CASES_DIR / f"{name}.json")).to_document(),
                           load_private_key(signing_keys[0]))
    assert check_signature(result_document(result_message(signed)), load_public_key(signing_keys[1])) is None


def test_a_public_port_needs_tls_and_clients_or_insecure_with_a_warning():
    from dkw.server.security import ServeSecurity

    assert ServeSecurity().refusal("127.0.0.1") is None and ServeSecurity().refusal("localhost") is None
    assert "without TLS" in ServeSecurity(clients="c.json").refusal("10.0.0.5")
    assert "without --clients" in ServeSecurity(tls_cert="c", tls_key="k").refusal("0.0.0.0")
    assert ServeSecurity(tls_cert="c", tls_key="k", clients="c.json").refusal("0.0.0.0") is None
    insecure = ServeSecurity(insecure=True)
    assert insecure.refusal("0.0.0.0") is None
    assert "WARNING" in insecure.warning("0.0.0.0") and insecure.warning("127.0.0.1") is None


def test_a_clients_file_broken_by_hand_keeps_the_last_good_clients(tmp_path):
    from dkw.server.auth import Authenticator, AuthError

    path = tmp_path / "clients.json"
    token = add_client(path, "tso-a", "submitter")
    auth = Authenticator(path)
    bearer = [("authorization", f"Bearer {token}")]
    assert auth.authenticate(bearer, {}).id == "tso-a"
    path.write_text("{not json")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # a changed mtime, even on coarse clocks
    assert auth.authenticate(bearer, {}).id == "tso-a"
    for metadata in ([("authorization", "Bearer dkw_000000000000_guess")], [("authorization", token)], []):
        with pytest.raises(AuthError):
            auth.authenticate(metadata, {"x509_common_name": [b"somebody-else"]})
