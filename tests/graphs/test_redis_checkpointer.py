"""Consultation checkpoints in Redis (langgraph-checkpoint-redis's AsyncRedisSaver) on a real server started for the
tests: put, get and list, expiry when a time-to-live is given, and a clear, fast error when nothing answers."""

from __future__ import annotations

import socket
import time

import pytest
import redis
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.redis.aio import AsyncRedisSaver

from agents.doctor import Doctor
from graphs import build_consultation_graph, checkpointers, recursion_limit_for
from graphs.checkpointers import (
    CheckpointerSetupError,
    CheckpointerUnreachable,
    describe_target,
    open_checkpointer,
    redact_url,
)
from tests.graphs.helpers import TableEnvironment, decision, doctor_model
from tests.redis_server import RedisServer


def _thread_keys(url: str, thread_id: str) -> list[bytes]:
    # Every key the saver wrote for this thread (checkpoints, writes, registries, the latest pointer).
    with redis.Redis.from_url(url) as client:
        return [key for key in client.scan_iter(count=1000) if thread_id.encode() in key]


def _ttls(url: str, keys: list[bytes]) -> list[int]:
    with redis.Redis.from_url(url) as client:
        return [client.ttl(key) for key in keys]


async def test_put_get_and_list_through_the_saver(redis_url: str) -> None:
    async with open_checkpointer(redis_url) as saver:
        assert isinstance(saver, AsyncRedisSaver)
        config = {"configurable": {"thread_id": "t-put", "checkpoint_ns": ""}}
        first, second = empty_checkpoint(), empty_checkpoint()
        first["channel_values"] = {"turn": 1}
        second["channel_values"] = {"turn": 2}
        saved = await saver.aput(config, first, {"source": "input", "step": 0}, {})
        saved = await saver.aput(saved, second, {"source": "loop", "step": 1}, {})

        latest = await saver.aget_tuple({"configurable": {"thread_id": "t-put"}})
        assert latest is not None
        assert latest.checkpoint["id"] == second["id"]
        assert latest.checkpoint["channel_values"] == {"turn": 2}
        assert latest.parent_config["configurable"]["checkpoint_id"] == first["id"]
        listed = [item.checkpoint["id"] async for item in saver.alist({"configurable": {"thread_id": "t-put"}})]
        assert listed == [second["id"], first["id"]]  # newest first
        assert await saver.aget_tuple({"configurable": {"thread_id": "someone-else"}}) is None


async def test_consultation_graph_checkpoints_every_step_to_redis(redis_url: str) -> None:
    model = doctor_model(decision("ask", "Where is the pain?"), decision("diagnose", "Acute myocardial infarction"))
    config = {"configurable": {"thread_id": "t-graph"}, "recursion_limit": recursion_limit_for(3)}
    async with open_checkpointer(redis_url) as saver:
        graph = build_consultation_graph(Doctor(model), TableEnvironment(), checkpointer=saver)
        final = await graph.ainvoke({"case_id": "c1", "objective": "Chest pain.", "max_turns": 3}, config)
    assert final["final_diagnosis"] == "Acute myocardial infarction"

    # A fresh connection (as another process would open) sees the finished state and the steps that led to it.
    async with open_checkpointer(redis_url) as saver:
        graph = build_consultation_graph(Doctor(doctor_model()), TableEnvironment(), checkpointer=saver)
        state = await graph.aget_state(config)
        assert state.values["final_diagnosis"] == "Acute myocardial infarction"
        assert [e["role"] for e in state.values["dialogue"]][:2] == ["doctor", "patient"]
        history = [snapshot async for snapshot in graph.aget_state_history(config)]
        assert len(history) >= 4


async def test_keys_expire_when_a_ttl_is_given_and_reads_refresh_it(redis_url: str) -> None:
    async with open_checkpointer(redis_url, ttl_minutes=2) as saver:
        checkpoint = empty_checkpoint()
        await saver.aput({"configurable": {"thread_id": "t-ttl", "checkpoint_ns": ""}}, checkpoint,
                         {"source": "input", "step": 0}, {})
        keys = _thread_keys(redis_url, "t-ttl")
        assert keys
        ttls = _ttls(redis_url, keys)
        assert all(60 < ttl <= 120 for ttl in ttls), dict(zip(keys, ttls, strict=True))

        # Shorten one by hand; a read puts the full time-to-live back (refresh_on_read).
        checkpoint_key = next(k for k in keys if k.startswith(b"checkpoint:"))
        with redis.Redis.from_url(redis_url) as client:
            client.expire(checkpoint_key, 10)
        assert await saver.aget_tuple({"configurable": {"thread_id": "t-ttl"}}) is not None
        assert _ttls(redis_url, [checkpoint_key])[0] > 60


async def test_without_a_ttl_keys_never_expire(redis_url: str) -> None:
    async with open_checkpointer(redis_url) as saver:
        await saver.aput({"configurable": {"thread_id": "t-keep", "checkpoint_ns": ""}}, empty_checkpoint(),
                         {"source": "input", "step": 0}, {})
    keys = _thread_keys(redis_url, "t-keep")
    assert keys and all(ttl == -1 for ttl in _ttls(redis_url, keys))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("userinfo", ["", ":s3cret-pw@", "clinic:s3cret-pw@"])
async def test_unreachable_redis_fails_fast_naming_the_url_without_its_password(userinfo: str) -> None:
    port = _closed_port()
    url = f"redis://{userinfo}127.0.0.1:{port}/0"
    started = time.monotonic()
    with pytest.raises(CheckpointerUnreachable) as caught:
        async with open_checkpointer(url):
            pytest.fail("opened a checkpointer where nothing listens")
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert f"127.0.0.1:{port}/0" in message
    assert "s3cret-pw" not in message and "s3cret-pw" not in repr(caught.value.args)
    if userinfo:
        assert f"redis://***@127.0.0.1:{port}/0" in message


async def test_a_server_that_never_answers_is_an_error_after_the_open_timeout_not_a_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The TCP handshake completes (the kernel queues the connection) but nothing ever replies to PING: what a
    # wedged Redis or a wrong port behind a silent proxy looks like.
    monkeypatch.setattr(checkpointers, "REDIS_OPEN_TIMEOUT_S", 1.0)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://:s3cret-pw@127.0.0.1:{silent.getsockname()[1]}/0"
        started = time.monotonic()
        with pytest.raises(CheckpointerUnreachable, match=r"redis://\*\*\*@127\.0\.0\.1") as caught:
            async with open_checkpointer(url):
                pytest.fail("opened a checkpointer where nothing answers")
        assert time.monotonic() - started < 5
    assert "s3cret-pw" not in str(caught.value)


async def test_a_redis_that_refuses_the_login_is_a_setup_error_without_the_password(redis_url: str) -> None:
    url = redis_url.replace("redis://", "redis://clinic:s3cret-pw@")
    with pytest.raises(CheckpointerSetupError, match="refused the login") as caught:
        async with open_checkpointer(url):
            pytest.fail("logged in with a password the server does not have")
    assert "s3cret-pw" not in str(caught.value) and "redis://***@127.0.0.1" in str(caught.value)


async def test_a_redis_that_cannot_create_the_indexes_is_a_setup_error_with_its_reason(redis_url: str) -> None:
    # The same refusal as a Redis without the search module (index creation fails), played by asking for database
    # 1: RediSearch creates indexes in database 0 only.
    url = redis_url.rsplit("/", 1)[0] + "/1"
    with pytest.raises(CheckpointerSetupError, match="Cannot create index on db != 0") as caught:
        async with open_checkpointer(url):
            pytest.fail("opened a checkpointer Redis cannot serve")
    assert url in str(caught.value) and "search and JSON modules" in str(caught.value)


def test_redaction_hides_passwords_in_every_place_redis_py_reads_them() -> None:
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redact_url("rediss://user:pw@cache.example.org:6380/2") == "rediss://***@cache.example.org:6380/2"
    assert redact_url("redis://cache/0?password=pw&socket_timeout=3") == "redis://cache/0?password=***&socket_timeout=3"
    assert describe_target("redis://:pw@h:1/0") == "redis://***@h:1/0"
    assert describe_target(None) == ":memory:"


def test_the_test_server_restarts_on_the_same_port_empty_and_stops(redis_url: str,
                                                                   redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_url) as client:
        client.set("before-restart", "1")
    port = redis_server.port
    redis_server.restart()
    assert redis_server.port == port and redis_server.url == redis_url
    with redis.Redis.from_url(redis_url) as client:
        assert client.ping() and client.get("before-restart") is None  # nothing persisted
        modules = {m[b"name"] for m in client.module_list()}
    assert {b"search", b"ReJSON"} <= modules


def test_a_server_of_its_own_stops_and_its_port_closes(redis_server: RedisServer) -> None:
    # redis_server is asked for only so that a machine without the wheels skips this test like the others.
    with RedisServer() as server:
        url, port = server.url, server.port
        with redis.Redis.from_url(url) as client:
            assert client.ping()
    assert not server.running
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
