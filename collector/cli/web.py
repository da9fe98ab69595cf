"""``collector web``: the live status page and its JSON, served by uvicorn until Ctrl-C."""

from __future__ import annotations

import ipaddress

import click

from collector import logs
from collector.cli.finite import FiniteFloat
from collector.cli.options import db_option, port_value, redis_options
from collector.errors import ConfigError


def is_loopback(bind: str) -> bool:
    """True for an address only this machine reaches (127.0.0.0/8, ::1, ``localhost``)."""
    if bind == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


@click.command()
@redis_options
@db_option
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default="8765",
    show_default=True,
    callback=port_value("--port"),
    help="TCP port to listen on.",
)
@click.option(
    "--token",
    envvar="COLLECTOR_WEB_TOKEN",
    show_envvar=True,
    default=None,
    help="Required from every client (?token=, a cookie, or Authorization: Bearer); needed "
    "when --bind is not a loopback address. Without it only your own programs are served.",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Another name the page answers to (it answers to loopback names and the --bind "
    "address only, so no other site can read it through a browser here). Repeatable.",
)
@click.option(
    "--refresh",
    type=FiniteFloat(min=0.5),
    default=2.0,
    show_default=True,
    help="Seconds between the page's refreshes.",
)
def web(
    redis_url: str,
    db_url: str,
    queue: str,
    bind: str,
    port: int,
    token: str | None,
    allow_hosts: tuple[str, ...],
    refresh: float,
) -> None:
    """Serve the live status page (read-only) at http://BIND:PORT/.

    \b
    Examples:
      collector web
      COLLECTOR_WEB_TOKEN=$(openssl rand -hex 16) collector web --bind 0.0.0.0 --port 8080
    """
    if not is_loopback(bind) and not token:
        raise ConfigError(
            f"--bind {bind} is reachable from other machines: set a token with --token or "
            "COLLECTOR_WEB_TOKEN"
        )
    try:
        import uvicorn

        from collector.web.app import create_app
    except ImportError:
        raise ConfigError(
            "collector web needs its extra: pip install 'result-collector[web]'"
        ) from None
    logs.configure(False)
    app = create_app(
        redis_url, db_url, queue, token=token, refresh=refresh, bind=bind, allow_hosts=allow_hosts
    )
    click.echo(f"status page at http://{bind}:{port}/", err=True)
    uvicorn.run(app, host=bind, port=port, log_level="warning", server_header=False)
