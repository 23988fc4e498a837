"""One unauthenticated 300 MB POST against the app: the server's memory with the body limit
and without it.

    .venv/bin/python -m bench.body_limit [--mb 300]

For each case a fresh server process (the real app, `create_app`, under uvicorn on 127.0.0.1,
on a throwaway SQLite store migrated to head) gets one POST to `/api/connections` with no
token, its body streamed from a generator, declared by Content-Length or sent chunked. The
server's VmRSS is read from /proc before and after, with VmHWM (its peak). The baseline is the
same app with the limit raised past the body (1 GiB), which is what the app did before the
limit: read the whole body before any route or authentication work, then answer (422 here, as
the body is not JSON; a JSON body gets its 401).

This is a one-off measurement, not a test: the figures depend on the machine.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench._sandbox import free_port, launch

MIB = 1024 * 1024
BASELINE_LIMIT = 1024 * MIB


def serve(port: int, limit: int) -> None:
    import uvicorn

    from brokerlink.api import create_app
    from brokerlink.config import Settings
    from brokerlink.db.migrate import upgrade_async

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(upgrade_async(settings.database_url_resolved))
    app = create_app(settings=settings, max_body_bytes=limit)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid`, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0])
    return out


def _start(limit: int, data_dir: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "BROKERLINK_DATA_DIR": data_dir, "BROKERLINK_SYNC_IN_APP": "false"}
    for name in (
        "SNAPTRADE_CLIENT_ID",
        "SNAPTRADE_CONSUMER_KEY",
        "PLAID_CLIENT_ID",
        "PLAID_SECRET",
    ):
        env.pop(name, None)  # never the real providers from a benchmark
    cmd = [sys.executable, "-m", "bench.body_limit", "--serve", str(port), "--limit", str(limit)]
    base = f"http://127.0.0.1:{port}"
    return launch(cmd, f"{base}/health", env=env), base


def _body(total: int) -> Iterator[bytes]:
    chunk = b"x" * MIB
    for _ in range(total // MIB):
        yield chunk


def one_post(limit: int, total: int, declared: bool) -> tuple[dict[str, int], dict[str, int], str]:
    with tempfile.TemporaryDirectory() as data_dir:
        proc, base = _start(limit, data_dir)
        try:
            time.sleep(0.5)  # let start-up allocations settle
            before = _memory(proc.pid)
            headers = {"content-type": "application/json"}
            if declared:
                headers["content-length"] = str(total)
            try:
                response = httpx.post(
                    f"{base}/api/connections", content=_body(total), headers=headers, timeout=120
                )
                answer = f"{response.status_code} {response.json()['error']['code']}"
            except httpx.HTTPError as error:
                answer = f"connection closed by the server ({type(error).__name__})"
            time.sleep(0.5)
            after = _memory(proc.pid)
        finally:
            proc.kill()
            proc.wait()
    return before, after, answer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=300)
    parser.add_argument("--serve", type=int)
    parser.add_argument("--limit", type=int, default=MIB)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.limit)
        return
    total = args.mb * MIB
    print(f"one unauthenticated POST /api/connections of {args.mb} MB, server RSS in MB")
    print(f"{'limit':>14} {'body':>15} {'before':>7} {'after':>7} {'peak':>7}  answer")
    grew: dict[tuple[int, bool], float] = {}
    for limit in (MIB, BASELINE_LIMIT):
        for declared in (True, False):
            before, after, answer = one_post(limit, total, declared)
            grew[(limit, declared)] = (after["VmHWM"] - before["VmRSS"]) / 1024
            print(
                f"{limit // MIB:>10} MiB {'Content-Length' if declared else 'chunked':>15}"
                f" {before['VmRSS'] / 1024:7.0f} {after['VmRSS'] / 1024:7.0f}"
                f" {after['VmHWM'] / 1024:7.0f}  {answer}",
                flush=True,
            )
    for declared in (True, False):
        ours, base = grew[(MIB, declared)], grew[(BASELINE_LIMIT, declared)]
        kind = "Content-Length" if declared else "chunked"
        print(f"{kind}: peak growth {ours:.1f} MB with the limit vs {base:.1f} MB without")


if __name__ == "__main__":
    main()
