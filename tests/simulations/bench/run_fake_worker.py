"""A distributed-run worker on the role-aware fake (a subprocess of the distributed tests, so it can be killed).

Usage: python run_fake_worker.py QUEUE_URL DELAY_S CONCURRENCY VISIBILITY_TIMEOUT_S
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from simulations.bench.distributed import run_worker
from tests.simulations.bench.fakes import fake_models

if __name__ == "__main__":
    url, delay, concurrency, visibility = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    run_worker(url, lambda _config: fake_models(delay_s=delay), concurrency=concurrency,
               visibility_timeout=visibility, loglevel="INFO")
