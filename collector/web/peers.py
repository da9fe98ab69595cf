"""Which user a connection to the status page comes from. On a login node every user can connect
to a loopback port, and the page shows tables, figures and record previews; without a token it
answers only to the user who started it, on this machine. Linux tells who owns the client's
end of a TCP connection in /proc/net/tcp and tcp6 (readable by all); where there is no such
file the page cannot tell, and only a token keeps other users out."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse

TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
REFUSAL = (
    "without a token this page answers only to the user who started it, on this machine: start "
    "it with --token (or COLLECTOR_WEB_TOKEN) to share it"
)


def proc_form(ip: Address, port: int) -> str:
    """``ip:port`` as /proc/net/tcp writes it: each 32-bit word of the address in host (little
    endian) byte order, then the port, all in upper-case hex."""
    raw = ip.packed
    words = (raw[i : i + 4][::-1].hex() for i in range(0, len(raw), 4))
    return f"{''.join(words).upper()}:{port:04X}"


def forms(host: str, port: int) -> list[str]:
    """Every way /proc/net/tcp{,6} can write ``host:port`` (an IPv4 address also appears mapped
    into IPv6 on a dual-stack socket)."""
    ip: Address = ipaddress.ip_address(host)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    found = [proc_form(ip, port)]
    if isinstance(ip, ipaddress.IPv4Address):
        found.append(proc_form(ipaddress.IPv6Address(f"::ffff:{ip}"), port))
    return found


def peer_uid(client: tuple[str, int], server: tuple[str, int]) -> int | None:
    """The user owning the socket at ``client`` that is connected to ``server`` on this machine;
    None when no such socket is here (a client on another machine, or one gone)."""
    local, remote = set(forms(*client)), set(forms(*server))
    for table in TABLES:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 7 and fields[1] in local and fields[2] in remote:
                return int(fields[7])
    return None


def can_tell() -> bool:
    """True where the kernel says who owns a TCP socket (Linux's /proc/net/tcp)."""
    return TABLES[0].is_file()


class PeerGate:
    """ASGI middleware for a page without a token: a request from a TCP peer that is not a
    socket of this user on this machine gets a 403 and nothing else. A client with no IP address
    (an in-process test client) is no peer; where the kernel cannot tell, every peer passes."""

    def __init__(self, app: Any) -> None:
        self.app, self.uid, self.enabled = app, os.geteuid(), can_tell()

    def refused(self, scope: Any) -> bool:
        client, server = scope.get("client"), scope.get("server")
        if not self.enabled or not client or not server:
            return False
        try:
            ipaddress.ip_address(client[0])
        except ValueError:  # not an IP address: no network peer
            return False
        return peer_uid((client[0], client[1]), (server[0], server[1])) != self.uid

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.refused(scope):
            await JSONResponse({"error": REFUSAL}, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)
