"""`brokerlink demo` as its own process, with its output in a pipe (as `make demo | tee` or a
log file has it) and started the way a shell starts a background job (SIGINT ignored)."""

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx


def _start(tmp_path: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env.update(BROKERLINK_DATA_DIR=str(tmp_path / "data"), BROKERLINK_DEMO_PORT="0")
    return subprocess.Popen(
        [sys.executable, "-m", "brokerlink", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one pipe, as `2>&1 | tee` has it
        text=True,
        env=env,
        # A background job of a non-interactive shell: SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )


def _read_until_running(process: subprocess.Popen[str]) -> tuple[list[str], threading.Thread]:
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if "Ctrl-C" in line:
                done.set()
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert done.wait(240), "\n".join(lines)
    return lines, reader


def test_a_backgrounded_demo_prints_whole_tables_its_sandboxes_and_stops_on_sigint(tmp_path):
    process = _start(tmp_path)
    reader: threading.Thread | None = None
    try:
        lines, reader = _read_until_running(process)
        text = "\n".join(lines)
        assert process.poll() is None, text
        # Tables are not cut to 80 columns (rich marks a cut cell with "…").
        accounts = [ln for ln in lines if "Schwab Individual Brokerage" in ln]
        assert accounts, text
        assert max(len(ln) for ln in lines) > 80
        assert not any("…" in ln for ln in lines), text
        # Nothing but table rows between a table's top and bottom border.
        inside = False
        for line in lines:
            if line.startswith("┏"):
                inside = True
            elif line.startswith("└"):
                inside = False
            elif inside:
                assert line[:1] in "┃┡│", f"a line inside a table: {line!r}\n{text}"
        # The sandboxes' addresses, and a sync command that works with them.
        snap = re.search(r"SnapTrade sandbox: (http://127\.0\.0\.1:\d+)", text)
        plaid = re.search(r"Plaid sandbox: (http://127\.0\.0\.1:\d+)", text)
        assert snap, text
        assert plaid, text
        assert f"brokerlink sync --snaptrade-url {snap[1]} --plaid-url {plaid[1]}" in text
        assert httpx.get(snap[1] + "/").status_code == 200
        app_url = re.search(r"running at (http://127\.0\.0\.1:\d+)", text)
        assert app_url, text
        assert httpx.get(app_url[1] + "/health").status_code == 200

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if reader is not None:
            reader.join(10)
        assert process.stdout is not None
        process.stdout.close()
