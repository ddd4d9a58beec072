"""Signatures any client can check, and one input_sha256 per auction (issue 23 §2).

Without a server: RFC 8785 bytes, the hash of a file, its bytes and its message, the JWS and the old
signatures. With one real `dkw serve` (TLS, a clients file, a signing key; small cases only): grpcurl's
output verified by `dkw verify` and by the openssl recipe of docs/security.md run as written, the final
WatchClearing event and CancelClearing, and a Node.js client (@grpc/grpc-js, Node's crypto) that clears
over TLS with a token and checks the signature itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import rfc8785
from conftest import CASES_DIR, grpcurl
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from test_security import Pki, Server  # certificates made at test time; a `dkw serve` child process

from dkw.clearing.canonical import _json_module_jcs, jcs
from dkw.clearing.document import load_auction_file
from dkw.clearing.signing import (
    LEGACY_ALGORITHM,
    LEGACY_CANONICALIZATION,
    check_detached,
    check_signature,
    key_id,
    legacy_canonical_json,
    load_private_key,
    load_public_key,
    sign_document,
    signed_bytes,
)
from dkw.server.auth import add_client
from dkw.server.convert import request_document
from dkw.server.tls import open_channel
from dkw.v1 import clearing_pb2 as pb
from dkw.v1 import clearing_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
SMALL = CASES_DIR / "01-merit-order.json"
AUCTIONS = sorted(CASES_DIR.glob("[0-9]*.json")) + [ROOT / "examples/auction.json"]


# ---- canonical JSON and input_sha256 -------------------------------------------------------------------


def test_jcs_writes_numbers_as_ecmascript_and_keys_sorted():
    assert jcs({"b": 100.0, "a": 100, "c": [1e21, 1e-7, 0.1, -0.0], "日本": "東京"}) == \
        '{"a":100,"b":100,"c":[1e+21,1e-7,0.1,0],"日本":"東京"}'.encode()
    assert jcs({"x": 2**60}) == b'{"x":1152921504606847000}'  # beyond 2**53: as JavaScript prints the double


_SCALARS = (st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=6))
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=4), inner, max_size=4), max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(_JSON)
def test_the_fast_jcs_writer_is_byte_for_byte_rfc8785(value):
    """`jcs` writes through the standard library's JSON encoder where it can (clearing/canonical.py): the
    bytes must be rfc8785's, whether the value stays on that path or leaves it."""
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError):
        return
    assert jcs(value) == expected


@pytest.mark.parametrize("path", AUCTIONS, ids=lambda p: p.stem)
def test_the_fast_jcs_writer_takes_every_shared_case(path):
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert _json_module_jcs(doc) == rfc8785.dumps(doc)  # no fallback: the fast path covers real documents


@pytest.mark.parametrize("path", AUCTIONS, ids=lambda p: p.stem)
def test_input_sha256_is_one_for_the_file_its_bytes_and_its_message(path):
    text = path.read_text(encoding="utf-8")
    # docs/auction.md's definition, computed independently: RFC 8785, empty lines/interfaces/resources left out
    document = {k: v for k, v in json.loads(text).items() if not (k in ("lines", "interfaces", "resources") and v == [])}
    defined = hashlib.sha256(rfc8785.dumps(document)).hexdigest()
    as_file = load_auction_file(path).input_sha256
    _, raw, as_bytes = request_document(pb.ClearRequest(auction_json=text.encode()))
    _, _, as_message = request_document(pb.ClearRequest(auction=json_format.Parse(text, pb.Auction())))
    # the same document written otherwise: indented, keys reversed, whole numbers as 12000.0
    rewritten = json.dumps(_floats(json.loads(text)), indent=3, ensure_ascii=True, sort_keys=False)
    _, _, as_rewritten = request_document(pb.ClearRequest(auction_json=rewritten.encode()))
    assert raw == text.encode()  # stored as received
    assert as_file == as_bytes == as_message == as_rewritten == defined


def _floats(value):
    if isinstance(value, dict):
        return {k: _floats(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_floats(v) for v in value]
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


# ---- the signature without a server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> SimpleNamespace:
    where = tmp_path_factory.mktemp("keys")
    private, public = where / "signing.pem", where / "signing.pub.pem"
    out = subprocess.run([sys.executable, "-m", "dkw", "keys", "new", str(private), str(public)], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return SimpleNamespace(private=private, public=public, private_key=load_private_key(private),
                           public_key=load_public_key(public))


def test_a_detached_jws_over_the_canonical_bytes(keys):
    doc = {"format": "jp-balancing-result/1", "objective_yen": 12000.0, "awards": [{"bid": "b1", "kw": 0.1}]}
    signed = sign_document(doc, keys.private_key)
    block = signed["signature"]
    header, payload, _ = block["jws"].split(".")
    assert payload == "" and json.loads(base64.urlsafe_b64decode(header + "==")) == \
        {"alg": "EdDSA", "kid": key_id(keys.public_key)} and block["key_id"] == key_id(keys.public_key)
    assert signed_bytes(signed) == b'{"awards":[{"bid":"b1","kw":0.1}],"format":"jp-balancing-result/1",' \
                                   b'"objective_yen":12000}'
    assert check_signature(signed, keys.public_key) is None
    assert check_detached(signed_bytes(signed), block["jws"], keys.public_key) is None
    assert "altered" in check_signature({**signed, "objective_yen": 12000.5}, keys.public_key)
    assert "altered" in check_detached(signed_bytes(signed) + b" ", block["jws"], keys.public_key)
    other = Path(keys.private).with_name("other.pem")
    subprocess.run([sys.executable, "-m", "dkw", "keys", "new", str(other), str(other) + ".pub"], cwd=ROOT, check=True,
                   capture_output=True)
    assert "not with this public key" in check_signature(signed, load_public_key(str(other) + ".pub"))


def test_results_signed_the_old_way_still_verify(keys):
    doc = {"format": "jp-balancing-result/1", "objective_yen": 12000.0, "prices": [{"p": 1e-07}]}
    value = base64.b64encode(keys.private_key.sign(legacy_canonical_json(doc))).decode()
    old = {**doc, "signature": {"algorithm": LEGACY_ALGORITHM, "key_id": key_id(keys.public_key),
                                "canonicalization": LEGACY_CANONICALIZATION, "value": value}}
    assert check_signature(old, keys.public_key) is None
    assert "altered" in check_signature({**old, "objective_yen": 1.0}, keys.public_key)


# ---- against a real server -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory, keys):
    pki = Pki(tmp_path_factory.mktemp("pki"))
    clients = tmp_path_factory.mktemp("clients") / "clients.json"
    token = add_client(clients, "tso-a", "submitter", None)
    server = Server(tmp_path_factory.mktemp("var-signing"), "--tls-cert", pki.server_cert, "--tls-key",
                    pki.server_key, "--clients", str(clients), "--signing-key", str(keys.private))
    stub = pb_grpc.ClearingStub(open_channel(server.target, ca=pki.ca, token=token, retries=False))
    yield SimpleNamespace(server=server, pki=pki, token=token, stub=stub, keys=keys)
    if server.process.poll() is None:
        assert server.stop() == 0


def call_grpcurl(service, method: str, request: dict) -> str:
    out = subprocess.run([grpcurl(), "-cacert", service.pki.ca, "-H", f"authorization: Bearer {service.token}",
                          "-d", "@", service.server.target, f"dkw.v1.Clearing/{method}"],
                         input=json.dumps(request), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def dkw_verify(auction: Path, result: Path, public: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dkw", "verify", str(auction), str(result), "--public-key", str(public)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_a_response_from_grpcurl_verifies_with_dkw_verify(service, tmp_path):
    """The README's form (the `auction` message) and the bytes form; Clear and GetResult as grpcurl
    prints them: signature valid, and the input hash is the file's."""
    doc = json.loads(SMALL.read_text())
    cleared = call_grpcurl(service, "Clear", {"auction": doc})
    fetched = call_grpcurl(service, "GetResult", {"auction_id": json.loads(cleared)["auction_id"]})
    by_bytes = call_grpcurl(service, "Clear", {"auction_json": base64.b64encode(SMALL.read_bytes()).decode()})
    for name, text in [("clear", cleared), ("get", fetched), ("bytes", by_bytes)]:
        response = tmp_path / f"{name}.json"
        response.write_text(text)
        ok = dkw_verify(SMALL, response, service.keys.public)
        assert ok.returncode == 0 and "signature valid" in ok.stdout, (name, ok.stdout, ok.stderr)
        assert "input_sha256" not in ok.stdout
    printed = json.loads(fetched)
    signed = base64.b64decode(printed["result_json"])
    assert json.loads(signed)["input_sha256"] == load_auction_file(SMALL).input_sha256
    assert json.loads(signed)["input_sha256"] == json.loads(base64.b64decode(json.loads(by_bytes)["result_json"]))[
        "input_sha256"]
    # one byte of the signed document changed: refused, exit 1
    altered = bytearray(signed)
    altered[signed.index(b'"objective_yen":') + len(b'"objective_yen":')] ^= 1
    printed["result_json"] = base64.b64encode(bytes(altered)).decode()
    (tmp_path / "altered.json").write_text(json.dumps(printed))
    bad = dkw_verify(SMALL, tmp_path / "altered.json", service.keys.public)
    assert bad.returncode == 1 and "signature check failed" in bad.stderr, bad.stderr


@pytest.mark.slow
def test_the_openssl_recipe_of_the_docs_verifies_a_grpcurl_response(service, tmp_path):
    for tool in ("openssl", "jq", "base64", "bash"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: the standard-tools recipe of docs/security.md cannot run")
    docs = (ROOT / "docs/security.md").read_text(encoding="utf-8")
    recipe = re.search(r"```sh\n(# in: response\.json.*?)```", docs, re.S).group(1)
    shutil.copy(service.keys.public, tmp_path / "public.pem")
    cleared = call_grpcurl(service, "Clear", {"auction_json": base64.b64encode(SMALL.read_bytes()).decode()})
    (tmp_path / "response.json").write_text(cleared)
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", recipe], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    if "-rawin" in run.stderr and "nknown option" in run.stderr:
        pytest.skip(f"this openssl has no pkeyutl -rawin (OpenSSL 3 has): {run.stderr.strip()}")
    assert run.returncode == 0 and "Signature Verified Successfully" in run.stdout, run.stdout + run.stderr
    assert f'"kid":"{key_id(service.keys.public_key)}"' in run.stdout
    assert json.loads((tmp_path / "result.json").read_bytes())["status"] == "OPTIMAL"
    # the same recipe on a response whose document was changed fails
    printed = json.loads(cleared)
    printed["result_json"] = base64.b64encode(base64.b64decode(printed["result_json"]).replace(b"OPTIMAL", b"OPTIMAl"))\
        .decode()
    (tmp_path / "response.json").write_text(json.dumps(printed))
    bad = subprocess.run(["bash", "-uo", "pipefail", "-c", recipe], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0 and "Verification Failure" in bad.stdout + bad.stderr


@pytest.mark.slow
def test_watch_and_cancel_carry_the_signed_bytes_too(service):
    submitted = service.stub.SubmitAuction(pb.SubmitAuctionRequest(auction_json=SMALL.read_bytes()), timeout=30)
    final = list(service.stub.WatchClearing(pb.WatchRequest(auction_id=submitted.auction_id), timeout=120))[-1]
    cancel = service.stub.CancelClearing(pb.CancelRequest(auction_id=submitted.auction_id), timeout=60)
    get = service.stub.GetResult(pb.GetResultRequest(auction_id=submitted.auction_id), timeout=30)
    assert final.state == cancel.state == get.state == pb.DONE
    assert final.result_json == cancel.result_json == get.result_json != b""
    for message in (final, cancel, get):
        assert check_detached(message.result_json, message.result_signature, service.keys.public_key) is None
    document = json.loads(get.result_json)
    assert document["input_sha256"] == submitted.input_sha256 == load_auction_file(SMALL).input_sha256
    assert "signature" not in document and jcs(document) == get.result_json  # the bytes are canonical


@pytest.mark.slow
def test_a_nodejs_client_clears_over_tls_with_a_token_and_verifies_with_node_crypto(service):
    node_dir = ROOT / "tests/node"
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Node.js client test needs Node.js 18 or later")
    if not (node_dir / "node_modules/@grpc/grpc-js").is_dir():
        pytest.skip("tests/node/node_modules is missing: run `npm ci --prefix tests/node` (.ci/run does)")
    out = subprocess.run([node, str(node_dir / "clear.js"), service.server.target, service.pki.ca, str(SMALL),
                          str(service.keys.public)], env={**os.environ, "DKW_TOKEN": service.token},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    assert printed["verified"] is True and printed["kid"] == key_id(service.keys.public_key)
    assert printed["state"] == "DONE" and printed["status"] == "OPTIMAL"
    assert printed["input_sha256"] == load_auction_file(SMALL).input_sha256
    # and with the wrong token the Node client is refused, not verified
    bad = subprocess.run([node, str(node_dir / "clear.js"), service.server.target, service.pki.ca, str(SMALL),
                          str(service.keys.public)], env={**os.environ, "DKW_TOKEN": "dkw_nope_nope"},
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "UNAUTHENTICATED" in bad.stderr, bad.stderr


def test_dkw_verify_accepts_a_result_hashed_the_old_way_with_a_note(tmp_path, capsys):
    """Results cleared before input_sha256 was the canonical form's carry the sha256 of the file's bytes."""
    from dkw.clearing.engine import clear
    from dkw.cli import main

    doc = clear(load_auction_file(SMALL)).to_document()
    doc["input_sha256"] = hashlib.sha256(SMALL.read_bytes()).hexdigest()
    (tmp_path / "old.json").write_text(json.dumps(doc))
    assert main(["verify", str(SMALL), str(tmp_path / "old.json")]) == 0
    assert "sha256 of the file's bytes" in capsys.readouterr().err
    doc["input_sha256"] = "0" * 64
    (tmp_path / "other.json").write_text(json.dumps(doc))
    assert main(["verify", str(SMALL), str(tmp_path / "other.json")]) == 1
    assert "input_sha256" in capsys.readouterr().out


def test_what_dkw_verify_reads_as_a_result(keys):
    """A result document, a response with resultJson (camelCase or proto names), a response from a server
    before result_json (rebuilt from the message), and clear refusals for the rest."""
    from dkw.clearing.engine import clear
    from dkw.result_input import UnreadableResult, read_result_input, signature_problem
    from dkw.server.convert import put_result

    doc = sign_document(clear(load_auction_file(SMALL)).to_document(), keys.private_key)
    response = pb.ClearResponse(auction_id="auc_1", state=pb.DONE)
    put_result(response, json.loads(json.dumps(doc)))
    assert response.result_json == signed_bytes(doc) and response.result_signature == doc["signature"]["jws"]
    for names in (False, True):
        printed = json.loads(json_format.MessageToJson(response, preserving_proto_field_name=names))
        given = read_result_input(printed)
        assert given.payload == signed_bytes(doc) and given.document == json.loads(signed_bytes(doc))
        assert signature_problem(given, keys.public_key) == (None, key_id(keys.public_key))
        printed.pop("result_json" if names else "resultJson")
        rebuilt = read_result_input(printed)  # an older server: the document rebuilt from the message
        assert rebuilt.payload is None and rebuilt.document["objective_yen"] == doc["objective_yen"]
    assert read_result_input(doc).document is doc and signature_problem(read_result_input(doc), keys.public_key)[0] is None
    for bad, why in [([], "JSON object"), ({"auctionId": "auc_1", "state": "QUEUED"}, "no result"),
                     ({"resultJson": 5}, "base64 string"), ({"resultJson": "!!"}, "not base64")]:
        with pytest.raises(UnreadableResult, match=why):
            read_result_input(bad)
    unsigned = read_result_input({"resultJson": base64.b64encode(signed_bytes(doc)).decode()})
    assert "no resultSignature" in signature_problem(unsigned, keys.public_key)[0]
