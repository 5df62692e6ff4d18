"""Run a benchmark of the demo cases on the role-aware fake (a subprocess of the resume tests, so it can be killed).

Usage: python run_fake_bench.py RUN_DIR [DELAY_S] [REPEATS]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from simulations.bench import RunOptions, make_plan, run_benchmark  # noqa: E402
from simulations.cases import demo_cases  # noqa: E402
from tests.simulations.bench.fakes import SPECS, fake_models  # noqa: E402


async def main(run_dir: Path, delay_s: float, repeats: int) -> None:
    plan = make_plan(demo_cases(), protocol="clinicflow", models=SPECS, max_turns=6, repeats=repeats)
    summary = await run_benchmark(plan, run_dir, fake_models(delay_s=delay_s), RunOptions(concurrency=3))
    print(f"planned={summary.planned} skipped={summary.skipped} finished={summary.finished} errors={summary.errors}")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.0,
                     int(sys.argv[3]) if len(sys.argv) > 3 else 1))
