"""A private Redis Cluster for the sharding tests: three redis-server processes with
``--cluster-enabled yes`` on free ports, joined by ``redis-cli --cluster create`` (no replicas),
every step bounded in time, every process stopped and every directory removed afterwards."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

from faults.servers import missing, wait_until

NODES = 3
BUS_OFFSET = 10000  # Redis Cluster's node-to-node bus listens on port + 10000


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port(taken: set[int]) -> int:
    """A port whose bus port (port + 10000) is free as well, not in ``taken``."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + BUS_OFFSET < 65536 and port not in taken and _free(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for a cluster node")


class RedisCluster:
    """Three master nodes covering all 16384 slots; ``url`` names the cluster."""

    def __init__(self, directory: Path) -> None:
        self.server = shutil.which("redis-server") or ""
        self.cli = shutil.which("redis-cli") or ""
        if not (self.server and self.cli):
            missing("redis-server and redis-cli")
        self.directory = directory
        taken: set[int] = set()
        for _ in range(NODES):
            taken.add(free_cluster_port(taken))
        self.ports = sorted(taken)
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/0"

    def _node(self, port: int) -> subprocess.Popen[bytes]:
        home = self.directory / str(port)
        home.mkdir(parents=True, exist_ok=True)
        argv = [
            self.server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(home),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--save", "", "--appendonly", "no", "--daemonize", "no",
        ]  # fmt: skip
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL)

    def start(self, timeout: float = 30) -> None:
        """Start the nodes, join them, wait until every node reports ``cluster_state:ok``."""
        self.procs = [self._node(port) for port in self.ports]
        self._wait(lambda c: _pings(c), timeout, "cluster nodes to start")
        subprocess.run(
            [self.cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=timeout,
        )  # fmt: skip
        self._wait(_ok, timeout, "cluster_state:ok")

    def kill(self, index: int) -> None:
        """SIGKILL node ``index`` (its keys are lost: no persistence)."""
        self.procs[index].kill()
        self.procs[index].wait(timeout=10)

    def restart(self, index: int, timeout: float = 30) -> None:
        """Start node ``index`` again; it rejoins from its nodes.conf, empty."""
        self.procs[index] = self._node(self.ports[index])
        self._wait(_ok, timeout, "cluster_state:ok after a restart")

    def _wait(self, check: Callable[[redis.Redis], bool], timeout: float, what: str) -> None:
        clients = [redis.Redis(port=port, socket_timeout=2) for port in self.ports]
        try:
            wait_until(lambda: all(check(c) for c in clients), timeout, what)
        finally:
            for client in clients:
                client.close()

    def stop(self) -> None:
        """Stop every node (SIGKILL after 10 s) and remove their directories."""
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _ok(client: redis.Redis) -> bool:
    try:
        info = client.execute_command("CLUSTER", "INFO")
    except redis.RedisError:
        return False
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text


@contextlib.contextmanager
def running_cluster(directory: Path) -> Iterator[RedisCluster]:
    """A started cluster, stopped and removed afterwards (also when starting it failed)."""
    cluster = RedisCluster(directory)
    try:
        cluster.start()
        time.sleep(0.2)  # let the nodes agree on the slot map before clients ask for it
        yield cluster
    finally:
        cluster.stop()
