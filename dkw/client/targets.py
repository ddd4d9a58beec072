"""What `--server` may name (one replica, several, a DNS name) and how gRPC is given it."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from dkw.client.errors import ConfigError
from dkw.server.tls import is_loopback


@dataclass(frozen=True)
class Target:
    """What `--server` names, as gRPC takes it: `grpc_target` (an `ipv4:`/`ipv6:` list for several
    replicas), the `authority` TLS checks the certificates against, and whether every host is loopback."""

    text: str
    grpc_target: str
    authority: str | None
    loopback: bool


def parse_target(text: str) -> Target:
    """`host:port`, `dns:///name:port` (every address of the name), or `a:port,b:port` (several replicas;
    names among them are resolved once, here). Raises ConfigError naming what is wrong."""
    text = text.strip()
    entries = [e.strip() for e in text.split(",")]
    if len(entries) == 1:
        host = _host_port(entries[0], text)[0] if not text.startswith(("dns:", "unix:", "ipv4:", "ipv6:")) else None
        return Target(text, text, None, host is not None and is_loopback(host))
    parsed = [_host_port(entry, text) for entry in entries]  # every entry's form first, then the names
    addresses, families = [], set()
    for host, port in parsed:
        for ip in _addresses(host, port, text):
            addresses.append(f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}")
            families.add(ip.version)
    if len(families) > 1:
        raise ConfigError(f"--server {text}: mixes IPv4 and IPv6 addresses; give replicas of one family")
    first_host, first_port = parsed[0]
    authority = f"[{first_host}]:{first_port}" if ":" in first_host else f"{first_host}:{first_port}"
    return Target(text, f"ipv{families.pop()}:" + ",".join(dict.fromkeys(addresses)), authority,
                  all(is_loopback(host) for host, _ in parsed))


def _host_port(entry: str, text: str) -> tuple[str, int]:
    host, sep, port = entry.rpartition(":")
    bare_v6 = ":" in host and not (host.startswith("[") and host.endswith("]"))
    if not sep or not host or bare_v6 or not port.isdigit() or not 0 < int(port) < 65536 or "/" in entry:
        raise ConfigError(f"--server {text}: {entry!r} is not HOST:PORT (IPv6: [ADDRESS]:PORT; several replicas: "
                          "HOST:PORT,HOST:PORT)")
    return host.strip("[]"), int(port)


def _addresses(host: str, port: int, text: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"--server {text}: cannot resolve {host!r} ({exc.strerror})") from None
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
