"""Every benchmark, one after the other: `make bench` (or `.venv/bin/python -m bench`).

Each prints its own ratio against a baseline measured in the same run.
"""

import subprocess
import sys

BENCHMARKS = (
    "bench.snaptrade",
    "bench.store",
    "bench.plaid_holdings",
    "bench.sync_fanout",
    "bench.consolidation",
    "bench.api_portfolio",
    "bench.body_limit",
    "bench.slow_provider",
    "bench.workers",
    "bench.webhooks",
    "bench.webhook_route",
)


def main() -> int:
    failed = 0
    for module in BENCHMARKS:
        print(f"\n== {module} ==", flush=True)
        failed |= subprocess.call([sys.executable, "-m", module])
    return failed


if __name__ == "__main__":
    sys.exit(main())
