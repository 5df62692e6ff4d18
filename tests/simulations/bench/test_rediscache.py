"""The model-call cache on Redis: first answer wins, shared across processes, TTL, corrupt entries, a clear error
when the server is not there, and a benchmark rerun served from Redis without reaching the model.

Every test runs against the session's own throwaway server (``redis_url``), never a Redis it did not start.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

from simulations.bench import RunOptions, make_plan, read_run, run_benchmark
from simulations.bench.callcache import (
    CallCacheError,
    CallCacheUnavailableError,
    SqliteCallCache,
    open_call_cache,
)
from simulations.bench.rediscache import DEFAULT_PREFIX, RedisCallCache, redact_url
from simulations.cases import demo_cases
from tests.redis_server import free_port
from tests.simulations.bench.fakes import SPECS, fake_models

REPO = Path(__file__).resolve().parents[3]
ANSWER = {"content": "héllo", "usage_metadata": {"input_tokens": 3}, "response_metadata": {"model": "m"}}


def _raw(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=5)


def test_put_get_round_trip_and_first_answer_wins(redis_url: str) -> None:
    with RedisCallCache(redis_url) as cache:
        assert cache.get("k") is None
        cache.put("k", ANSWER)
        cache.put("k", {"content": "second answer"})
        assert cache.get("k") == ANSWER
        assert len(cache) == 1
    with _raw(redis_url) as client:
        # Stored as a JSON string under the prefix, with no expiry unless one is asked for.
        assert json.loads(client.get(DEFAULT_PREFIX + "k")) == ANSWER
        assert client.ttl(DEFAULT_PREFIX + "k") == -1


def test_first_answer_wins_across_two_clients(redis_url: str) -> None:
    with RedisCallCache(redis_url) as first, RedisCallCache(redis_url) as second:
        first.put("k", {"content": "first"})
        second.put("k", {"content": "second"})
        assert first.get("k") == second.get("k") == {"content": "first"}


def test_len_counts_only_keys_under_the_prefix(redis_url: str) -> None:
    with _raw(redis_url) as client:
        client.set("someone-else:key", "x")
        client.set("clinicflow:callsX", "x")  # shares the prefix's letters but not the prefix
    with RedisCallCache(redis_url) as cache, RedisCallCache(redis_url, prefix="other[1]:") as other:
        for index in range(25):
            cache.put(f"k{index}", {"content": str(index)})
        other.put("k0", {"content": "elsewhere"})
        assert len(cache) == 25 and len(other) == 1
        assert cache.get("k0") == {"content": "0"} and other.get("k0") == {"content": "elsewhere"}


def test_a_second_process_reads_what_the_first_wrote(redis_url: str) -> None:
    with RedisCallCache(redis_url) as cache:
        cache.put("mine", {"content": "from the parent"})
        script = textwrap.dedent(f"""
            from simulations.bench.callcache import open_call_cache
            cache = open_call_cache({redis_url!r})
            print(cache.get("mine")["content"])
            cache.put("theirs", {{"content": "from the child"}})
            cache.close()
        """)
        out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True,
                             timeout=60)
        assert out.stdout.strip() == "from the parent"
        assert cache.get("theirs") == {"content": "from the child"}


def test_ttl_is_applied_when_given(redis_url: str) -> None:
    with RedisCallCache(redis_url, ttl_seconds=120) as cache, _raw(redis_url) as client:
        cache.put("k", {"content": "expires"})
        assert 0 < client.ttl(DEFAULT_PREFIX + "k") <= 120
        # A replaced corrupt entry gets the TTL too.
        client.set(DEFAULT_PREFIX + "bad", b"{not json")
        cache.put("bad", {"content": "fresh"})
        assert 0 < client.ttl(DEFAULT_PREFIX + "bad") <= 120
    with pytest.raises(ValueError, match="ttl_seconds"):
        RedisCallCache(redis_url, ttl_seconds=0)


def test_an_expired_entry_is_a_miss(redis_url: str) -> None:
    with RedisCallCache(redis_url, ttl_seconds=1) as cache:
        cache.put("k", {"content": "short-lived"})
        assert cache.get("k") == {"content": "short-lived"}
        deadline = time.monotonic() + 5
        while cache.get("k") is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cache.get("k") is None


@pytest.mark.parametrize("stored", [b'{"content": "cut of', b"\xff\xfe not utf-8", b'["not", "an", "object"]'])
def test_corrupt_value_is_a_miss_and_is_replaced(redis_url: str, stored: bytes) -> None:
    with RedisCallCache(redis_url) as cache, _raw(redis_url) as client:
        cache.put("k", {"content": "fine"})
        client.set(DEFAULT_PREFIX + "k", stored)
        assert cache.get("k") is None
        cache.put("k", {"content": "fresh"})
        cache.put("k", {"content": "later"})  # the replacement is now the first readable answer: it stays
        assert cache.get("k") == {"content": "fresh"}


def test_unreachable_server_fails_fast_naming_the_url_without_its_password() -> None:
    url = f"redis://clinic:s3cret-pw@127.0.0.1:{free_port()}/0"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(CallCacheUnavailableError) as caught:
        open_call_cache(url)
    assert time.monotonic() - started < 3.0
    message = str(caught.value)
    assert "s3cret-pw" not in message and repr(url) not in message
    assert redact_url(url) in message and "clinic:***@127.0.0.1" in message and "unreachable" in message
    assert isinstance(caught.value, CallCacheError)


def test_a_closed_cache_raises_instead_of_missing(redis_url: str) -> None:
    cache = RedisCallCache(redis_url)
    cache.close()
    with pytest.raises(CallCacheError, match="closed"):
        cache.get("k")


def test_redact_url() -> None:
    assert redact_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redact_url("rediss://user:pw@h/2") == "rediss://user:***@h/2"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
    assert redact_url("redis://user@h:6379/0") == "redis://user@h:6379/0"
    assert redact_url("redis://u:pw@[::1/0") == "redis://***@[::1/0"  # unparsable: all before the host hidden


def test_an_invalid_url_is_a_call_cache_error_without_the_password() -> None:
    with pytest.raises(CallCacheError, match="not a valid Redis URL") as caught:
        RedisCallCache("redis://u:s3cret-pw@h:notaport/0")
    assert "s3cret-pw" not in str(caught.value) and "u:***@h:notaport" in str(caught.value)


def test_open_call_cache_picks_the_store_from_the_target(redis_url: str, tmp_path: Path) -> None:
    redis_cache = open_call_cache(redis_url)
    sqlite_cache = open_call_cache(tmp_path / "calls.sqlite")
    text_path_cache = open_call_cache(str(tmp_path / "other.sqlite"))
    try:
        assert isinstance(redis_cache, RedisCallCache)
        assert isinstance(sqlite_cache, SqliteCallCache) and isinstance(text_path_cache, SqliteCallCache)
    finally:
        for cache in (redis_cache, sqlite_cache, text_path_cache):
            cache.close()


@pytest.mark.parametrize("target", [Path("redis://127.0.0.1:6379/0"), "http://cache.example/0", "valkey://h:1/0"])
def test_a_url_that_is_not_redis_is_refused_not_made_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            target: str | Path) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CallCacheError, match="not a redis:// or rediss:// URL"):
        open_call_cache(target)
    assert list(tmp_path.iterdir()) == []  # no SQLite file named after the URL


async def test_cached_rerun_on_redis_replays_without_calling_the_model(redis_url: str, tmp_path: Path) -> None:
    plan = make_plan(demo_cases(), protocol="clinicflow", models=SPECS, max_turns=6, temperature=0.7)
    first_models = fake_models()
    first = await run_benchmark(plan, tmp_path / "a", first_models, RunOptions(cache_path=redis_url))
    assert first_models["reasoning"].calls and first.cache_misses > 0 and first.errors == 0
    replay_models = fake_models()
    second = await run_benchmark(plan, tmp_path / "b", replay_models, RunOptions(cache_path=redis_url))
    assert all(model.calls == [] for model in replay_models.values())
    assert second.cache_misses == 0 and second.cache_hits == first.cache_misses
    assert [(r.attempt, r.final_diagnosis, r.correct, r.turns) for r in second.results] == [
        (r.attempt, r.final_diagnosis, r.correct, r.turns) for r in first.results
    ]
    with RedisCallCache(redis_url) as cache:
        assert len(cache) == first.cache_misses  # one entry per distinct call, all in Redis
    assert read_run(tmp_path / "b").environment.cache == redis_url


async def test_a_run_records_the_redis_url_without_its_password(redis_url: str, tmp_path: Path) -> None:
    # The test server's default user has no password, so it accepts any: the run works and must not keep it.
    url = redis_url.replace("redis://", "redis://default:s3cret-pw@")
    plan = make_plan(demo_cases()[:1], protocol="clinicflow", models=SPECS, max_turns=2)
    summary = await run_benchmark(plan, tmp_path, fake_models(), RunOptions(cache_path=url))
    assert summary.cache_misses > 0
    config = (tmp_path / "config.json").read_text(encoding="utf-8")
    assert "s3cret-pw" not in config and "default:***@127.0.0.1" in config


def test_cli_cache_file_naming_an_unreachable_redis_is_a_clear_error(tmp_path: Path) -> None:
    from tests.clinicflow.test_cli import clinicflow

    url = f"redis://clinic:s3cret-pw@127.0.0.1:{free_port()}/0"  # nothing listens there
    spec = "openai:fake@http://127.0.0.1:9/v1"  # never called: the cache fails first
    done = clinicflow("bench", "run", "--dataset", "demo", "--limit", "1", "--run-dir", str(tmp_path / "run"),
                      "--reasoning", spec, "--patient", spec, "--measurement", spec, "--judge", spec,
                      "--cache-file", url, "--no-report", cache_dir=tmp_path, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "unreachable" in done.stderr
    assert "clinic:***@127.0.0.1" in done.stderr and "s3cret-pw" not in done.stdout + done.stderr
    # The run directory records the cache and the command line, both without the password.
    config = (tmp_path / "run" / "config.json").read_text(encoding="utf-8")
    assert "s3cret-pw" not in config and config.count("clinic:***@127.0.0.1") == 2


def test_settings_accept_a_redis_url_for_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from clinicflow.settings import Settings

    monkeypatch.setenv("CLINICFLOW_CACHE_DIR", str(tmp_path))
    assert Settings().call_cache_file == tmp_path / "model-calls.sqlite"
    monkeypatch.setenv("CLINICFLOW_BENCH__CACHE_FILE", "redis://cache-host:6379/3")
    assert Settings().call_cache_file == "redis://cache-host:6379/3"  # kept whole: a Path would fold the "//"
