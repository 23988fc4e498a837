"""Start a sandbox or a server in its own process (so no client pays for the server's CPU)."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import httpx

__all__ = ["free_port", "launch", "start_sandbox"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(
    cmd: list[str],
    probe_url: str,
    *,
    ready: Callable[[httpx.Response], bool] = lambda answer: answer.status_code == 200,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> subprocess.Popen[bytes]:
    """Start `cmd` and return once `probe_url` answers as `ready` says; exit with its stderr if
    it dies first, or when `timeout` seconds pass."""
    # stderr to a file, not a pipe: a pipe nobody reads would stall the server once full.
    # Ours is closed on the way out (the process writes on through its own descriptor).
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                raise SystemExit(f"{cmd[2]} exited: {log.read().decode(errors='replace')}")
            try:
                if ready(httpx.get(probe_url, timeout=1)):
                    return proc
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.05)
        proc.kill()
        proc.wait()
        raise SystemExit(f"{cmd[2]} did not start within {timeout:g} s")


def start_sandbox(
    provider: str, options: list[str], ready_path: str, *, timeout: float = 60.0
) -> tuple[subprocess.Popen[bytes], str]:
    """`brokerlink sandbox <provider> <options>` on a free loopback port, once `ready_path`
    answers `{"online": true}` (within `timeout` seconds); returns the process and its base
    URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "brokerlink", "sandbox", provider, "--port", str(port), *options]
    base_url = f"http://127.0.0.1:{port}"
    proc = launch(
        cmd,
        base_url + ready_path,
        ready=lambda answer: bool(answer.json().get("online")),
        timeout=timeout,
    )
    return proc, base_url
