"""Messages an operator can act on (issue 23, part 5): every refusal is one line naming the cause and the
fix, with an exit code a script can tell apart, no raw gRPC C-core lines, and no retries of what will
not heal; under `--log-format json` every line the server writes is JSON; the metrics port answers
`/metrics` only.

Time budget: four short-lived servers (TLS, mutual TLS, plaintext with JSON logs, one killed mid-solve)
and a few refused starts; one solve of a small case, and one 300-bid auction killed while solving.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from argparse import Namespace
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from conftest import CASES_DIR
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from test_grpc import Served
from test_security import Server, _certificate, _name, _pem_key

from dkw.cli import (
    EXIT_BAD_INPUT,
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_PERMISSION_DENIED,
    EXIT_UNAUTHENTICATED,
    EXIT_UNREACHABLE,
)
from dkw.server.auth import add_client
from dkw.server.client import exit_code_for
from dkw.server.connection import Unreachable
from dkw.server.tls import channel_from_args
from dkw.v1 import clearing_pb2 as pb
from dkw.v1 import clearing_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
SMALL = CASES_DIR / "01-merit-order.json"
#: What gRPC's retries took before a TLS mismatch was reported (0.5 + 1 + 2 + 4 s of backoff).
OLD_RETRIES_S = 7.5


def dkw(*args: str, timeout: float = 60) -> tuple[int, str, float]:
    """Run `python -m dkw ARGS` as an operator would; (exit code, stderr, seconds taken)."""
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "dkw", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout)
    return out.returncode, out.stderr, time.monotonic() - started


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "ssl_transport_security" not in stderr and "Traceback" not in stderr, stderr
    return lines[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _leaf(subject: str, key, ca: x509.Certificate, ca_key, *, expired: bool = False,
          san: list[x509.GeneralName] | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    start, end = (now - dt.timedelta(days=30), now - dt.timedelta(days=1)) if expired else \
        (now - dt.timedelta(minutes=5), now + dt.timedelta(days=1))
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(ca.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


class Pki:
    """A CA, its server certificate (127.0.0.1) and client certificates on demand; a rogue CA's client."""

    def __init__(self, where: Path):
        self.dir = where
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_cert = _certificate("dkw test CA", self.ca_key, _name("dkw test CA"), self.ca_key, ca=True)
        self.ca = self._write("ca.pem", self.ca_cert.public_bytes(serialization.Encoding.PEM))
        self.server_cert, self.server_key = self.leaf("dkw server", san=[
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        self.client_cert, self.client_key = self.leaf("tso-a")
        rogue_key = ec.generate_private_key(ec.SECP256R1())
        rogue = _certificate("rogue CA", rogue_key, _name("rogue CA"), rogue_key, ca=True)
        self.rogue_ca = self._write("rogue-ca.pem", rogue.public_bytes(serialization.Encoding.PEM))
        self.rogue_cert, self.rogue_key = self.leaf("tso-a", issuer=(rogue, rogue_key), file="rogue-tso-a")

    def _write(self, name: str, data: bytes) -> str:
        (self.dir / name).write_bytes(data)
        return str(self.dir / name)

    def leaf(self, cn: str, *, expired: bool = False, san=None, issuer=None, file: str | None = None) -> tuple[str, str]:
        """(certificate file, key file) for `cn`, signed by the CA (or `issuer`), expired yesterday if asked."""
        ca, ca_key = issuer or (self.ca_cert, self.ca_key)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _leaf(cn, key, ca, ca_key, expired=expired, san=san)
        file = file or f"{cn.replace(' ', '-')}{'-expired' if expired else ''}"
        return (self._write(f"{file}.pem", cert.public_bytes(serialization.Encoding.PEM)),
                self._write(f"{file}-key.pem", _pem_key(key)))


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def clients(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("clients") / "clients.json"
    return path, {cid: add_client(path, cid, role) for cid, role in [("tso-a", "submitter"), ("monitor", "reader")]}


@pytest.fixture(scope="module")
def servers(tmp_path_factory, pki, clients):
    """A TLS server, a mutual-TLS one with clients, and a plaintext one."""
    made = {"tls": Server(tmp_path_factory.mktemp("var-tls"), "--tls-cert", pki.server_cert, "--tls-key",
                          pki.server_key),
            "mtls": Server(tmp_path_factory.mktemp("var-mtls"), "--tls-cert", pki.server_cert, "--tls-key",
                           pki.server_key, "--tls-client-ca", pki.ca, "--clients", str(clients[0])),
            "plain": Server(tmp_path_factory.mktemp("var-plain"))}
    yield {name: server.target for name, server in made.items()}
    for server in made.values():
        if server.process.poll() is None:
            server.stop()


# ---- connection failures: one line, exit 3, at once ---------------------------------------------------


def mismatches(pki: Pki) -> list[tuple[str, list[str], str]]:
    """(server, the client's flags, what the line must say) for every way TLS can disagree."""
    expired = pki.leaf("tso-a", expired=True)
    return [
        ("tls", [], "speaks TLS and this client connected in plaintext: give --tls-ca"),
        ("plain", ["--tls-ca", pki.ca], "speaks plaintext, not TLS: drop --tls-ca"),
        ("tls", ["--tls-ca", pki.rogue_ca], f"is not signed by the CA in --tls-ca {pki.rogue_ca}"),
        ("mtls", ["--tls-ca", pki.ca], "requires a client certificate (mutual TLS): give --tls-cert and --tls-key"),
        ("mtls", ["--tls-ca", pki.ca, "--tls-cert", pki.rogue_cert, "--tls-key", pki.rogue_key],
         f"refused the client certificate --tls-cert {pki.rogue_cert} (issued by 'CN=rogue CA,O=dkw test'): it is "
         "not signed by a CA the server trusts"),
        ("mtls", ["--tls-ca", pki.ca, "--tls-cert", expired[0], "--tls-key", expired[1]],
         f"the client certificate --tls-cert {expired[0]} expired on"),
    ]


@pytest.mark.slow
def test_each_tls_mismatch_is_one_line_with_the_fix_and_exit_3_at_once(servers, pki):
    for server, flags, says in mismatches(pki):
        # the line and the code, as an operator sees them
        code, stderr, _ = dkw("clear", str(SMALL), "-q", "--server", servers[server], *flags)
        line = one_line(stderr)
        assert code == EXIT_UNREACHABLE and says in line and line.endswith("nothing was cleared"), (server, flags, line)
        # the time: the failure is diagnosed when gRPC first reports it, not after its retries
        args = Namespace(server=servers[server], **dict(zip(("tls_ca", "tls_cert", "tls_key"), flags[1::2], strict=False)))
        started = time.monotonic()
        with pytest.raises(Unreachable, match=re.escape(says)):
            channel_from_args(args)
        assert time.monotonic() - started < 3.0, (server, flags)  # in practice some 0.05 s


@pytest.mark.slow
def test_nothing_listening_is_said_after_a_short_grace_and_cancel_says_the_same(servers, pki):
    target = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(Unreachable, match=f"nothing is listening on {target} \\(connection refused\\)"):
        channel_from_args(Namespace(server=target))
    assert time.monotonic() - started < 4.0  # the 2 s grace for a restarting server, not 7.5 s of retries
    code, stderr, seconds = dkw("cancel", "auc_x", "--server", servers["tls"])  # another remote command
    assert code == EXIT_UNREACHABLE and "speaks TLS and this client connected in plaintext" in one_line(stderr)
    assert seconds < OLD_RETRIES_S


# ---- refusals by the server: their own exit codes -------------------------------------------------------


@pytest.mark.slow
def test_exit_codes_tell_authentication_permission_and_not_found_apart(servers, pki, clients):
    tls = ["--tls-ca", pki.ca]
    stranger = pki.leaf("tso-unregistered")
    code, stderr, _ = dkw("clear", str(SMALL), "-q", "--server", servers["mtls"], *tls, "--tls-cert", stranger[0],
                          "--tls-key", stranger[1])
    line = one_line(stderr)
    assert code == EXIT_UNAUTHENTICATED, line
    assert "the client certificate's CN 'tso-unregistered' names no registered client" in line
    assert f"dkw clients add {clients[0]} tso-unregistered --role ROLE" in line
    with_cert = [*tls, "--tls-cert", pki.client_cert, "--tls-key", pki.client_key]
    code, stderr, _ = dkw("clear", str(SMALL), "-q", "--server", servers["mtls"], *with_cert, "--token", "dkw_0_x")
    assert code == EXIT_UNAUTHENTICATED and "unknown or revoked token" in one_line(stderr)
    code, stderr, _ = dkw("clear", str(SMALL), "-q", "--server", servers["mtls"], *with_cert, "--token",
                          clients[1]["monitor"])
    assert code == EXIT_PERMISSION_DENIED and "role 'reader'" in one_line(stderr)
    code, stderr, _ = dkw("cancel", "auc_nope", "--server", servers["plain"])
    assert code == EXIT_NOT_FOUND and "no auction 'auc_nope'" in one_line(stderr)


def test_grpc_codes_map_to_exit_codes_in_one_place():
    assert {code: exit_code_for(code) for code in grpc.StatusCode if exit_code_for(code) != EXIT_FAILED} == {
        grpc.StatusCode.INVALID_ARGUMENT: EXIT_BAD_INPUT, grpc.StatusCode.UNAVAILABLE: EXIT_UNREACHABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED: EXIT_UNREACHABLE, grpc.StatusCode.UNAUTHENTICATED: EXIT_UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED: EXIT_PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND: EXIT_NOT_FOUND,
        grpc.StatusCode.RESOURCE_EXHAUSTED: EXIT_BUSY}


def test_the_readme_and_the_cli_list_the_same_exit_codes():
    import dkw.cli

    codes = {name: getattr(dkw.cli, name) for name in dir(dkw.cli) if name.startswith("EXIT_")}
    readme = (ROOT / "README.md").read_text()
    start = readme.index("Exit codes")
    paragraph = readme[start:readme.index("\n\n", start)]  # the README's exit-code paragraph
    for name, number in codes.items():
        assert f"`{number}`" in paragraph, name
        assert f"{number} `{name}`" in dkw.cli.__doc__ or name == "EXIT_INTERRUPTED", name


# ---- refused starts: one line naming the flag ------------------------------------------------------------


def test_serve_refuses_a_key_that_is_not_the_certificates(tmp_path, pki):
    code, stderr, _ = dkw("serve", "--port", "0", "--data", str(tmp_path), "--tls-cert", pki.server_cert, "--tls-key",
                          pki.client_key)
    line = one_line(stderr)
    assert code == EXIT_BAD_INPUT and "in use" not in line
    assert f"--tls-key {pki.client_key} does not belong to --tls-cert {pki.server_cert}" in line


def test_serve_names_the_metrics_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, stderr, _ = dkw("serve", "--port", "0", "--data", str(tmp_path), "--metrics-port", str(port))
    line = one_line(stderr)
    assert code == EXIT_BAD_INPUT and f"--metrics-port {port}: port {port} on 127.0.0.1 is already in use" in line


def test_serve_says_only_postgresql_urls_are_supported_without_echoing_the_password(tmp_path):
    code, stderr, _ = dkw("serve", "--port", "0", "--data", str(tmp_path), "--database",
                          "mysql://dkw:s3cret@db.example/dkw")
    line = one_line(stderr)
    assert code == EXIT_BAD_INPUT and "mysql:// URLs are not supported, only postgresql://" in line
    assert "--data" in line and "s3cret" not in line


def test_clients_add_into_a_missing_directory_names_the_directory(tmp_path):
    missing = tmp_path / "no" / "such"
    code, stderr, _ = dkw("clients", "add", str(missing / "clients.json"), "tso-a", "--role", "submitter")
    line = one_line(stderr)
    assert code == EXIT_BAD_INPUT and f"the directory {missing} does not exist" in line
    assert ".clients.json." not in line  # not the temporary file's name


# ---- JSON logs and metrics -----------------------------------------------------------------------------


def json_lines(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    assert lines
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not JSON: {line!r}") from None
    return parsed


@pytest.mark.slow
def test_json_logs_are_json_from_start_to_stop_and_metrics_answer_on_metrics_only(tmp_path, pki):
    server = Served(tmp_path / "var", extra=("--log-format", "json", "--metrics-port", "0", "--tls-cert",
                                             pki.server_cert, "--tls-key", pki.server_key))
    try:
        assert json.loads(server.banner)["message"].startswith("listening on 127.0.0.1:")  # stdout: JSON too
        channel = grpc.secure_channel(server.target, grpc.ssl_channel_credentials(Path(pki.ca).read_bytes()))
        stub = pb_grpc.ClearingStub(channel)
        assert stub.Clear(pb.ClearRequest(auction_json=SMALL.read_bytes()), timeout=60).state == pb.DONE
        with pytest.raises(grpc.RpcError) as invalid:
            stub.Clear(pb.ClearRequest(auction_json=b'{"auction_id": 7}'), timeout=30)
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError):
            channel.unary_unary("/dkw.v1.Clearing/Validate")(b"\xff\xff\xff", timeout=10)
        code, stderr, _ = dkw("clear", str(SMALL), "-q", "--server", server.target)  # a failing TLS handshake
        assert code == EXIT_UNREACHABLE, stderr
        metrics_port = int(re.search(r"metrics on 127\.0\.0\.1:(\d+)", server.banner).group(1))
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        assert re.search(r'^dkw_build_info\{highs_version="\d+\.\d+\.\d+",version="[^"]+"\} 1\.0$', text, re.M)
        assert "dkw_final_gap_ratio_count 1.0" in text and "dkw_final_gap_count" not in text
        assert re.search(r"^process_resident_memory_bytes \d", text, re.M)
        for path in ("/", "/metrics/", "/health", "/favicon.ico"):  # /healthz and /readyz are the probes (test_ops)
            with pytest.raises(urllib.error.HTTPError) as missing:
                urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}{path}", timeout=10)
            assert missing.value.code == 404, path
        channel.close()
    finally:
        assert server.stop() == 0
        server.kill_all()
    logged = json_lines(server.data / "serve.log")
    said = [line["message"] for line in logged if line["logger"] == "dkw.serve"]
    assert said[0].startswith("shutting down") and said[-1].startswith("stopped in "), said  # the drain between
    assert re.fullmatch(r"stopped in [\d.]+ s \(drain [\d.]+ s, calls [\d.]+ s, workers [\d.]+ s, audit [\d.]+ s, "
                        r"store [\d.]+ s\)", said[-1]), said[-1]  # a slow shutdown names its step
    refusals = [line for line in logged if line["message"].startswith("refused ")]
    assert len(refusals) == 2, refusals  # one line per invalid request: the bad document, the bad bytes
    assert "INVALID_ARGUMENT: invalid auction" in refusals[0]["message"] and "does not parse" in refusals[1]["message"]
    assert not any("leaked" in line["message"] for line in logged)  # the resource tracker's warning is gone


@pytest.mark.slow
def test_a_worker_whose_server_was_killed_mid_solve_writes_nothing_but_json(tmp_path):
    raw = subprocess.run([sys.executable, "bench/casegen.py", "--seed", "1", "--bids", "300"], cwd=ROOT, check=True,
                         capture_output=True).stdout
    server = Served(tmp_path / "var", extra=("--log-format", "json"))
    try:
        submitted = server.stub.SubmitAuction(pb.SubmitAuctionRequest(auction_json=raw, options=pb.SolveOptions(
            time_limit_s=60, method="straight")), timeout=30)
        for event in server.stub.WatchClearing(pb.WatchRequest(auction_id=submitted.auction_id), timeout=120):
            if event.phase == pb.ClearingProgress.SOLVING:
                break
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL  # and its workers exit within seconds
    finally:
        server.kill_all()
    json_lines(server.data / "serve.log")  # every line, the workers' included, is JSON


@pytest.mark.slow
def test_an_expired_server_certificate_and_one_for_another_name_are_said_so(pki, tmp_path):
    """Against a bare gRPC TLS server in this process: what a client is told about the server's certificate."""
    for kind, cert_and_key, says in [
            ("expired", pki.leaf("dkw server", expired=True, san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
                                 file="server-expired"), "expired on"),
            ("elsewhere", pki.leaf("dkw server", san=[x509.DNSName("dkw.example")], file="server-elsewhere"),
             "is for dkw.example, not 127.0.0.1: connect by one of those names")]:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        credentials = grpc.ssl_server_credentials([(Path(cert_and_key[1]).read_bytes(),
                                                    Path(cert_and_key[0]).read_bytes())])
        port = server.add_secure_port("127.0.0.1:0", credentials)
        server.start()
        try:
            with pytest.raises(Unreachable) as refused:
                channel_from_args(Namespace(server=f"127.0.0.1:{port}", tls_ca=pki.ca))
            assert str(refused.value).startswith(f"the server's certificate at 127.0.0.1:{port}"), kind
            assert says in str(refused.value), (kind, str(refused.value))
        finally:
            server.stop(0)
