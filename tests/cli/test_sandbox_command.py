"""`brokerlink sandbox snaptrade` serves the emulator on loopback with the given key pair."""

import socket
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sandbox_command_serves_status_on_loopback():
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "brokerlink",
            "sandbox",
            "snaptrade",
            "--port",
            str(port),
            "--client-id",
            "CLI-TEST",
            "--consumer-key",
            "cli-test-key",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert status is not None, proc.stderr.read().decode() if proc.stderr else "no output"
        assert status.status_code == 200
        body = status.json()
        assert body["online"] is True
        assert "timestamp" in body
        # A request signed for another client id is refused.
        unsigned = httpx.get(f"http://127.0.0.1:{port}/accounts?clientId=OTHER&timestamp=1")
        assert unsigned.status_code == 401
        assert unsigned.json()["code"] == "1078"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
