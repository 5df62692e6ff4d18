"""The runner with its attempts checkpointed to Redis: every attempt's final state is there for inspection."""

from __future__ import annotations

from pathlib import Path

import redis

from graphs.checkpointers import open_checkpointer
from simulations.bench import RunOptions, make_plan, run_benchmark
from simulations.cases import demo_cases
from tests.simulations.bench.fakes import SPECS, fake_models


async def test_attempts_checkpoint_to_redis_and_can_be_read_back_from_another_connection(
    tmp_path: Path, redis_url: str
) -> None:
    plan = make_plan(demo_cases()[:2], protocol="clinicflow", models=SPECS, max_turns=6)
    options = RunOptions(concurrency=2, checkpointer=redis_url, checkpoint_ttl_minutes=30)
    summary = await run_benchmark(plan, tmp_path, fake_models(), options)
    assert summary.finished == 2

    async with open_checkpointer(redis_url) as saver:
        for result in summary.results:
            saved = await saver.aget_tuple({"configurable": {"thread_id": f"{summary.run_id}/{result.attempt}"}})
            assert saved is not None, result.attempt
            values = saved.checkpoint["channel_values"]
            assert values["final_diagnosis"] == result.final_diagnosis and values["turn"] == result.turns
    keys = list(redis.Redis.from_url(redis_url).scan_iter(match="*checkpoint*", count=1000))
    assert keys and all(0 < redis.Redis.from_url(redis_url).ttl(k) <= 30 * 60 for k in keys[:20])
