"""Why a command cannot reach `dkw serve`, in one line that names the cause and the fix.

gRPC reports every transport failure alike (UNAVAILABLE, "Socket closed", raw handshake errors) and its
retry policy retries them for seconds, though a TLS mismatch never heals. So a command first waits for
its channel to be ready (`wait_until_ready`); the moment gRPC reports a failed connection, a quick probe
with Python's `socket` and `ssl` finds out what is wrong (`diagnose`): nothing listens; the server speaks
TLS and the client did not (or the reverse); the server's certificate is not signed by `--tls-ca`, has
expired or names another host; the server wants a client certificate, or refused the one given. Only
"nothing listens" and "no answer" may heal (a server restarting): those get a short grace, then give up.
"""

from __future__ import annotations

import datetime as dt
import queue
import socket
import ssl
import time
from dataclasses import dataclass, replace

import grpc

#: How long a command waits for a connection to a server that answers but is slow (a loaded network).
CONNECT_TIMEOUT_S = 10.0
#: How long a refused or unanswered connection is tried again: a replica restarting is back within it.
HEAL_GRACE_S = 2.0
#: Each step of the probe (TCP connect, TLS handshake, the server's first HTTP/2 frame).
PROBE_TIMEOUT_S = 3.0
#: The first bytes a gRPC client sends (HTTP/2 connection preface and an empty SETTINGS frame).
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS_FRAME = 0x04
#: OpenSSL's verification errors worth a sentence of their own (X509_V_ERR_*).
UNTRUSTED = {2, 18, 19, 20, 21}
NOT_YET_VALID, EXPIRED, HOST_MISMATCH, IP_MISMATCH = 9, 10, 62, 64


class Unreachable(Exception):
    """The service cannot be reached; the message is the one line to show (exit code 3)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a command connects and with which TLS files (None: plaintext)."""

    target: str
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    server_name: str | None = None
    system_roots: bool = False  # TLS without --tls-ca: the server's certificate from a public CA


@dataclass(frozen=True, slots=True)
class Diagnosis:
    message: str
    may_heal: bool = False


def wait_until_ready(channel: grpc.Channel, endpoint: Endpoint, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Return once `channel` is connected; raise `Unreachable` with the cause when it cannot be."""
    states: queue.SimpleQueue[grpc.ChannelConnectivity] = queue.SimpleQueue()
    callback = states.put
    channel.subscribe(callback, try_to_connect=True)
    started = time.monotonic()
    pending: Diagnosis | None = None  # a failure that may heal, tried again until the grace ends
    try:
        while True:
            now = time.monotonic()
            wait = started + timeout - now
            if pending is not None:
                wait = min(wait, started + HEAL_GRACE_S - now)
            try:
                state = states.get(timeout=max(wait, 0.0))
            except queue.Empty:
                found = diagnose(endpoint)
                raise Unreachable(found.message if found else f"{endpoint.target} accepts connections but gRPC did "
                                  f"not connect within {timeout:g} s: is it a `dkw serve` (check --server), and is it "
                                  "serving (its health is NOT_SERVING while it stops)?") from None
            if state is grpc.ChannelConnectivity.READY:
                return
            if state in (grpc.ChannelConnectivity.TRANSIENT_FAILURE, grpc.ChannelConnectivity.SHUTDOWN):
                found = diagnose(endpoint)
                if found is None:
                    continue  # the server answers now; gRPC reconnects by itself
                if found.may_heal and time.monotonic() - started < HEAL_GRACE_S:
                    pending = found
                    continue
                raise Unreachable(found.message)
    finally:
        channel.unsubscribe(callback)


def split_target(target: str) -> tuple[str, int] | None:
    """(host, port) of a gRPC target `host:port`, `[v6]:port`, `dns:///host:port`; None for others (unix:)."""
    for prefix in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if target.startswith(prefix):
            target = target[len(prefix):]
            break
    if target.startswith("unix"):
        return None
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host or (":" in host and not host.startswith("[")):
        return None
    return host.strip("[]"), int(port)


def diagnose(endpoint: Endpoint) -> Diagnosis | None:
    """What keeps a client with these settings from `endpoint.target`; None when the probe finds nothing.
    A list of replicas (`a:7443,b:7443`, dkw.client) is reachable when one of them is; otherwise each says why."""
    if "," in endpoint.target:
        found = [diagnose(replace(endpoint, target=one.strip())) for one in endpoint.target.split(",")]
        if any(f is None for f in found):
            return None
        return Diagnosis("no replica can be reached: " + "; ".join(f.message for f in found),
                         may_heal=any(f.may_heal for f in found))
    where = split_target(endpoint.target)
    if where is None:
        return Diagnosis(f"cannot connect to {endpoint.target}", may_heal=True)
    target, (host, port) = endpoint.target, where
    try:
        sock = socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S)
    except socket.gaierror as exc:
        return Diagnosis(f"cannot resolve the host {host!r} ({exc.strerror}): check --server {target}")
    except ConnectionRefusedError:
        return Diagnosis(f"nothing is listening on {target} (connection refused): start `dkw serve` there, or check "
                         "--server", may_heal=True)
    except TimeoutError:
        return Diagnosis(f"{target} does not answer (no connection within {PROBE_TIMEOUT_S:g} s): check --server, the "
                         "network and any firewall in between", may_heal=True)
    except OSError as exc:
        return Diagnosis(f"cannot connect to {target}: {exc.strerror or exc}: check --server and the network",
                         may_heal=True)
    with sock:
        if endpoint.ca is None and not endpoint.system_roots:
            return _plaintext_client(sock, endpoint, host, port)
        return _tls_client(sock, endpoint, host, port)


def _first_frame_is_settings(stream: socket.socket) -> bool:
    """Send the HTTP/2 preface and tell whether the server answers with its SETTINGS frame (False: closed)."""
    try:
        stream.sendall(HTTP2_PREFACE)
        head = b""
        while len(head) < 9:
            chunk = stream.recv(9 - len(head))
            if not chunk:
                return False
            head += chunk
    except (OSError, ssl.SSLError):
        return False
    return head[3] == SETTINGS_FRAME


def _plaintext_client(sock: socket.socket, endpoint: Endpoint, host: str, port: int) -> Diagnosis | None:
    if _first_frame_is_settings(sock):
        return None
    if _peer_certificate(host, port, endpoint.server_name) is not None:
        return Diagnosis(f"{endpoint.target} speaks TLS and this client connected in plaintext: give --tls-ca CA.pem "
                         "(the CA certificate that signed the server's certificate)")
    return Diagnosis(f"{endpoint.target} closed the connection without answering as a gRPC server: check --server")


def _context(endpoint: Endpoint) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_alpn_protocols(["h2"])
    if endpoint.ca:
        context.load_verify_locations(endpoint.ca)
    else:
        context.load_default_certs()
    if endpoint.cert and endpoint.key:
        context.load_cert_chain(endpoint.cert, endpoint.key)
    return context


def _tls_client(sock: socket.socket, endpoint: Endpoint, host: str, port: int) -> Diagnosis | None:
    target = endpoint.target
    try:
        context = _context(endpoint)
    except (OSError, ssl.SSLError) as exc:  # the files were read once already: a key that fits no certificate
        return Diagnosis(f"--tls-cert {endpoint.cert} and --tls-key {endpoint.key} cannot be used together "
                         f"({getattr(exc, 'reason', None) or exc}): give the key the certificate was issued for")
    try:
        stream = context.wrap_socket(sock, server_hostname=endpoint.server_name or host)
    except ssl.SSLCertVerificationError as exc:
        return _untrusted_server(exc, endpoint, host, port)
    except (ssl.SSLError, OSError) as exc:
        if _speaks_plaintext(host, port):
            return Diagnosis(f"{target} speaks plaintext, not TLS: drop --tls-ca/--tls-cert/--tls-key, or start "
                             "`dkw serve` with --tls-cert and --tls-key")
        return Diagnosis(f"the TLS handshake with {target} failed ({getattr(exc, 'reason', None) or exc}): check "
                         "--server and the server's TLS settings")
    with stream:
        if _first_frame_is_settings(stream):
            return None
    # TLS 1.3: the server judges the client's certificate after the handshake and closes the connection
    if not endpoint.cert:
        return Diagnosis(f"{target} requires a client certificate (mutual TLS): give --tls-cert and --tls-key (a "
                         "certificate whose CN is your client id, signed by the CA the server trusts)")
    mine = _load_certificate(endpoint.cert)
    if mine is not None and mine.not_valid_after_utc < dt.datetime.now(dt.UTC):
        return Diagnosis(f"the client certificate --tls-cert {endpoint.cert} expired on "
                         f"{_day(mine.not_valid_after_utc)}: get a new one from your CA")
    if mine is not None and mine.not_valid_before_utc > dt.datetime.now(dt.UTC):
        return Diagnosis(f"the client certificate --tls-cert {endpoint.cert} is valid only from "
                         f"{_day(mine.not_valid_before_utc)}: check this machine's clock")
    issuer = f" (issued by '{mine.issuer.rfc4514_string()}')" if mine is not None else ""
    return Diagnosis(f"{target} refused the client certificate --tls-cert {endpoint.cert}{issuer}: it is not signed "
                     "by a CA the server trusts (its --tls-client-ca); use a certificate from that CA")


def _untrusted_server(exc: ssl.SSLCertVerificationError, endpoint: Endpoint, host: str, port: int) -> Diagnosis:
    target, theirs = endpoint.target, None
    der = _peer_certificate(host, port, endpoint.server_name)
    if der is not None:
        from cryptography import x509

        try:
            theirs = x509.load_der_x509_certificate(der)
        except ValueError:
            theirs = None
    code = exc.verify_code
    if code == EXPIRED and theirs is not None:
        return Diagnosis(f"the server's certificate at {target} expired on {_day(theirs.not_valid_after_utc)}: the "
                         "server needs a renewed certificate (dkw serve --tls-cert)")
    if code == NOT_YET_VALID:
        return Diagnosis(f"the server's certificate at {target} is not valid yet: check the clocks of both machines")
    if code in (HOST_MISMATCH, IP_MISMATCH):
        names = ", ".join(_names(theirs)) if theirs is not None else "other names"
        return Diagnosis(f"the server's certificate at {target} is for {names}, not {endpoint.server_name or host}: "
                         "connect by one of those names, or have the certificate re-issued with this one")
    if code in UNTRUSTED:
        issuer = f" (issued by '{theirs.issuer.rfc4514_string()}')" if theirs is not None else ""
        trusted = f"the CA in --tls-ca {endpoint.ca}" if endpoint.ca else "a CA this system trusts (no --tls-ca given)"
        return Diagnosis(f"the server's certificate at {target}{issuer} is not signed by {trusted}: give the CA "
                         "certificate that signed it (--tls-ca)")
    return Diagnosis(f"the server's certificate at {target} is not trusted: {exc.verify_message} (--tls-ca "
                     f"{endpoint.ca})")


def _peer_certificate(host: str, port: int, server_name: str | None) -> bytes | None:
    """The server's certificate (DER) from a handshake that verifies nothing; None when it speaks no TLS."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as sock, \
                context.wrap_socket(sock, server_hostname=server_name or host) as stream:
            return stream.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None


def _speaks_plaintext(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as sock:
            return _first_frame_is_settings(sock)
    except OSError:
        return False


def _load_certificate(path: str):
    from cryptography import x509

    try:
        with open(path, "rb") as f:
            return x509.load_pem_x509_certificate(f.read())
    except (OSError, ValueError):
        return None


def _names(certificate) -> list[str]:
    from cryptography import x509

    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [certificate.subject.rfc4514_string()]
    return [str(n) for n in san.get_values_for_type(x509.DNSName)] + \
        [str(n) for n in san.get_values_for_type(x509.IPAddress)]


def _day(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
