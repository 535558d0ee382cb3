"""Ports for a test's own services (a broker of its own), chosen so nothing else takes them.

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` lies in the ephemeral range, from
which it also picks the source port of every outgoing connection: between a test choosing such
a port and its broker binding it (or re-binding it after a restart), a client connection of the
same machine may take it. So ports are drawn at random from below that range, and each is
checked by binding it once.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_LOW, _HIGH = 20_000, 32_000
"""Below Linux's default ephemeral range (32768-60999), above the well-known services."""


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports, free now and outside the ephemeral range."""
    high = min(_HIGH, _ephemeral_low())
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(_LOW, high)
        if port in ports:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    return ports
