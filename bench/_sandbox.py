"""Start a provider sandbox in its own process (so no client pays for the server's CPU)."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time

import httpx

__all__ = ["start_sandbox"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sandbox(
    provider: str, options: list[str], ready_path: str
) -> tuple[subprocess.Popen[bytes], str]:
    """`brokerlink sandbox <provider> <options>` on a free loopback port, once `ready_path`
    answers `{"online": true}`; returns the process and its base URL."""
    port = _free_port()
    cmd = [sys.executable, "-m", "brokerlink", "sandbox", provider, "--port", str(port), *options]
    # stderr to a file, not a pipe: a pipe nobody reads would stall the server once full.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise SystemExit(f"sandbox exited: {log.read().decode(errors='replace')}")
        try:
            if httpx.get(base_url + ready_path, timeout=1).json().get("online"):
                return proc, base_url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("sandbox did not start within 20 s")
