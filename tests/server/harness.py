"""Runs ``narthex serve`` as a real subprocess on a free port and talks to it over HTTP."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

MINIMAL_CONFIG = """\
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: self
    static_configs:
      - targets: ["localhost:9090"]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Response:
    status: int
    body: str
    headers: dict[str, str]


@dataclass
class ServerProcess:
    """A running server; ``request`` never raises on HTTP error statuses."""

    tmp: pathlib.Path
    args: list[str] = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: pathlib.Path | None = None

    @property
    def config_path(self) -> pathlib.Path:
        return self.tmp / "prometheus.yml"

    def base(self, prefix: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{prefix}"

    def start(self, wait_ready: bool = True) -> ServerProcess:
        self.port = self.port or free_port()
        self.log_path = self.tmp / f"server-{self.port}.log"
        cmd = [
            sys.executable,
            "-m",
            "narthex",
            "serve",
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            *self.args,
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        if wait_ready:
            self.wait_until(lambda: self.request("GET", "/-/ready").status == 200, "ready")
        return self

    def wait_until(self, predicate, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.proc.returncode} before {what}:\n{self.log()}"
                )
            try:
                if predicate():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log()}")

    def request(
        self, method: str, path: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        req = urllib.request.Request(self.base() + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return Response(resp.status, resp.read().decode(), dict(resp.headers))
        except urllib.error.HTTPError as err:
            return Response(err.code, err.read().decode(), dict(err.headers))

    def metric(self, name: str) -> float | None:
        """The value of an unlabelled sample on ``/metrics``."""
        for line in self.request("GET", "/metrics").body.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
