"""A private MariaDB server for the fault tests, which stop, kill and restart it: initialised
once in a temporary directory, on a free port and its own socket, run as the current user."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from faults.servers import free_port, missing, wait_until


class MariaDbServer:
    """A private MariaDB server (mariadb-install-db once) in a temporary directory, on a free
    port and its own socket, without grant tables (root, no password), as the current user."""

    def __init__(self) -> None:
        self.binary = shutil.which("mariadbd") or shutil.which("mysqld") or ""
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if not self.binary or not install:
            missing("MariaDB server binaries (mariadbd, mariadb-install-db)")
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="rc-mariadb-"))
        self.data = self.directory / "data"
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        subprocess.run(
            [install, "--no-defaults", f"--datadir={self.data}", f"--user={self.user}",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/mysql"

    def start(self) -> None:
        """Start (InnoDB recovers what a kill left) and wait until it answers."""
        self.proc = subprocess.Popen(
            [self.binary, "--no-defaults", f"--datadir={self.data}", f"--user={self.user}",
             f"--port={self.port}", "--bind-address=127.0.0.1", "--skip-grant-tables",
             f"--socket={self.directory / 'mysqld.sock'}", "--skip-log-bin",
             f"--pid-file={self.directory / 'mysqld.pid'}", "--innodb-buffer-pool-size=32M",
             f"--log-error={self.directory / 'error.log'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)

        def answers() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                log = (self.directory / "error.log").read_text(errors="replace")
                pytest.fail(f"mariadbd exited with {self.proc.returncode}:\n{log[-2000:]}")
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
                return True
            except sa.exc.OperationalError:
                return False

        try:
            wait_until(answers, 60, f"mariadbd on port {self.port}", every=0.2)
        finally:
            engine.dispose()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: a clean shutdown; SIGKILL: a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)
        self.proc = None

    def start_if_stopped(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.start()

    def remove(self) -> None:
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)
