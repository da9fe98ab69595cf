"""Which ``Host`` headers the status page answers to. A page on some other site can point its own
name at 127.0.0.1 (DNS rebinding) and then read whatever a browser on this machine fetches from
that name, record previews included; its requests carry that name as ``Host``. So the page
answers only to loopback names, the address it is bound to (with a wildcard bind: this machine's
names) and the names ``--allow-host`` adds; anything else is a 400."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

WILDCARDS = ("0.0.0.0", "::", "*", "")
LOOPBACK_NAMES = ("localhost",)


def host_of(header: str) -> str:
    """The name in a ``Host`` header (or a bound address): lower case, without the port, the
    brackets of an IPv6 address or a trailing dot."""
    text = header.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        text = text[1:end] if end > 0 else text
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    return text.rstrip(".")


def is_loopback(name: str) -> bool:
    """True for ``localhost``, a name under ``.localhost`` and a loopback address."""
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def allowed_hosts(bind: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names besides loopback ones that the page bound to ``bind`` answers to."""
    names = {host_of(name) for name in extra}
    if bind in WILDCARDS:
        names |= {host_of(socket.gethostname()), host_of(socket.getfqdn())}
    else:
        names.add(host_of(bind))
    return frozenset(names)


class HostGate:
    """ASGI middleware: a request whose ``Host`` is not allowed gets a 400 and nothing else."""

    def __init__(self, app: Any, hosts: frozenset[str]) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = Headers(scope=scope).get("host", "")
            name = host_of(given)
            if not is_loopback(name) and name not in self.hosts:
                error = (
                    f"this page does not answer to the host {given[:100]!r}: open it by a "
                    "loopback name, or start it with --allow-host for that name"
                )
                await JSONResponse({"error": error}, status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)
