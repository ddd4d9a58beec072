"""TLS on both ends: the server's credentials (`dkw serve --tls-cert/--tls-key[/--tls-client-ca]`) and the
channel a CLI command opens to a server (`--tls-ca [--tls-cert --tls-key] --token`)."""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

import grpc

from dkw.server.client import CHANNEL_OPTIONS, MESSAGE_LIMITS  # as `connect`: the limits and the retry policy
from dkw.server.connection import Endpoint, wait_until_ready


class TlsFileError(ValueError):
    """A certificate or key file that cannot be read; the message names the flag and the file."""


def _read(flag: str, path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TlsFileError(f"{flag} {path}: cannot read: {exc.strerror or exc}") from None
    if b"-----BEGIN" not in data:
        raise TlsFileError(f"{flag} {path}: not a PEM file")
    return data


def server_credentials(cert: str | None, key: str | None, client_ca: str | None) -> grpc.ServerCredentials | None:
    """TLS credentials, requiring client certificates signed by `client_ca` when given; None without TLS."""
    if cert is None and key is None:
        if client_ca is not None:
            raise TlsFileError("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS first)")
        return None
    if cert is None or key is None:
        raise TlsFileError("--tls-cert and --tls-key go together")
    check_key_pair(cert, key)
    return grpc.ssl_server_credentials([(_read("--tls-key", key), _read("--tls-cert", cert))],
                                       root_certificates=_read("--tls-client-ca", client_ca),
                                       require_client_auth=client_ca is not None)


def check_key_pair(cert: str, key: str) -> None:
    """Raise TlsFileError naming both files when the key is not the certificate's (gRPC would only fail to
    listen, or to handshake, without saying why), or when either is not what its flag says."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        certificate = x509.load_pem_x509_certificate(_read("--tls-cert", cert))
    except ValueError as exc:
        raise TlsFileError(f"--tls-cert {cert}: not a PEM certificate ({exc})") from None
    try:
        private = serialization.load_pem_private_key(_read("--tls-key", key), password=None)
    except TypeError:
        raise TlsFileError(f"--tls-key {key}: the key is encrypted; give it unencrypted (readable by this account "
                           "only)") from None
    except ValueError as exc:
        raise TlsFileError(f"--tls-key {key}: not a PEM private key ({exc})") from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if private.public_key().public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
        raise TlsFileError(f"--tls-key {key} does not belong to --tls-cert {cert} (their public keys differ): give "
                           "the private key the certificate was issued for")


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer TOKEN` to every call (on TLS and plaintext loopback channels alike)."""

    def __init__(self, token: str):
        self.header = ("authorization", f"Bearer {token}")

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [*(details.metadata or ()), self.header]
        return details._replace(metadata=metadata) if hasattr(details, "_replace") else _Details(details, metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)


class _Details(grpc.ClientCallDetails):
    def __init__(self, details: grpc.ClientCallDetails, metadata: Sequence[tuple[str, str]]):
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)


def open_channel(target: str, *, ca: str | None = None, cert: str | None = None, key: str | None = None,
                 token: str | None = None, server_name: str | None = None, retries: bool = True,
                 system_roots: bool = False, authority: str | None = None,
                 service_config: str | None = None) -> grpc.Channel:
    """A channel to `dkw serve`: TLS when `ca` is given (with a client certificate for mutual TLS), or with
    `system_roots` (trusting gRPC's default roots), plaintext otherwise; every call carries the token when
    there is one. With `retries` (the default), calls refused with UNAVAILABLE or RESOURCE_EXHAUSTED are
    retried (dkw.server.client.SERVICE_CONFIG, or `service_config` JSON). `authority` is the name TLS checks
    the certificate against (dkw.client sets it for a list of replicas)."""
    options = list(CHANNEL_OPTIONS) if retries else [*MESSAGE_LIMITS, ("grpc.enable_retries", 0)]
    if service_config is not None:
        options = [o for o in options if o[0] != "grpc.service_config"] + [("grpc.service_config", service_config)]
    if authority:
        options.append(("grpc.default_authority", authority))
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    if ca is None and not system_roots and (cert or key):
        raise TlsFileError("--tls-cert/--tls-key need --tls-ca (the CA that signed the server's certificate)")
    if (cert is None) != (key is None):
        raise TlsFileError("--tls-cert and --tls-key go together")
    if cert is not None and key is not None:
        check_key_pair(cert, key)
    if ca is not None or system_roots:
        credentials = grpc.ssl_channel_credentials(_read("--tls-ca", ca), _read("--tls-key", key),
                                                   _read("--tls-cert", cert))
        channel = grpc.secure_channel(target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    return grpc.intercept_channel(channel, _BearerToken(token)) if token else channel


def add_client_arguments(p: argparse.ArgumentParser) -> None:
    """The connection flags every command that talks to a server shares (dkw/remote_commands.py)."""
    p.add_argument("--tls-ca", metavar="FILE", help="talk TLS to the server, trusting this CA certificate (PEM)")
    p.add_argument("--tls-cert", metavar="FILE", help="client certificate for mutual TLS (PEM)")
    p.add_argument("--tls-key", metavar="FILE", help="its private key (PEM)")
    p.add_argument("--token", metavar="TOKEN", default=None,
                   help="client token (`dkw clients add`); default: the DKW_TOKEN environment variable")
    p.add_argument("--tls-server-name", metavar="NAME", help="check every replica's certificate against NAME instead "
                   "of the first --server host (grpc.ssl_target_name_override; docs/api.md: Failover)")
    p.add_argument("--insecure", action="store_true", help="plaintext to a server that is not on this machine "
                   "(without --tls-ca a non-loopback server is reached by TLS, trusting the system's CAs)")


def channel_from_args(args: argparse.Namespace, *, ready: bool = True) -> grpc.Channel:
    """The channel of a command's `--server` and connection flags, connected: raises TlsFileError for a
    file that cannot be used (exit 2) and `dkw.server.connection.Unreachable` with the one-line cause when
    the server cannot be reached (exit 3), instead of gRPC's seconds of retries and raw lines."""
    token = getattr(args, "token", None) or os.environ.get("DKW_TOKEN") or None
    endpoint = Endpoint(args.server, getattr(args, "tls_ca", None), getattr(args, "tls_cert", None),
                        getattr(args, "tls_key", None))
    channel = open_channel(endpoint.target, ca=endpoint.ca, cert=endpoint.cert, key=endpoint.key, token=token)
    if ready:
        try:
            wait_until_ready(channel, endpoint)
        except BaseException:
            channel.close()
            raise
    return channel
