"""The on-disk model-call cache: stable keys, first answer wins, shared across processes, corrupt entries ignored."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from simulations.bench.callcache import SqliteCallCache, call_key

REPO = Path(__file__).resolve().parents[3]
PARAMS = {"max_new_tokens": 64, "json_schema": {"type": "object"}, "stop": None, "seed": 11, "temperature": 0.0}


def messages() -> list:
    return [SystemMessage(content="You are a doctor."), HumanMessage(content="Chest pain — since when?"),
            AIMessage(content=[{"type": "text", "text": "Since Tuesday."}], name="patient")]


def test_put_get_round_trip_and_first_answer_wins(tmp_path: Path) -> None:
    with SqliteCallCache(tmp_path / "calls.sqlite") as cache:
        assert cache.get("k") is None
        cache.put("k", {"content": "héllo", "usage_metadata": {"input_tokens": 3}})
        cache.put("k", {"content": "second answer"})
        assert cache.get("k") == {"content": "héllo", "usage_metadata": {"input_tokens": 3}}
        assert len(cache) == 1


def test_key_is_the_same_in_another_process() -> None:
    script = textwrap.dedent("""
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
        from simulations.bench.callcache import call_key
        msgs = [SystemMessage(content="You are a doctor."), HumanMessage(content="Chest pain — since when?"),
                AIMessage(content=[{"type": "text", "text": "Since Tuesday."}], name="patient")]
        params = {"temperature": 0.0, "seed": 11, "stop": None, "json_schema": {"type": "object"},
                  "max_new_tokens": 64}
        print(call_key("embedded", msgs, params))
    """)
    env = {"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"}
    other = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                           check=True).stdout.strip()
    assert other == call_key("embedded", messages(), PARAMS)
    assert len(other) == 64 and int(other, 16) >= 0


def test_key_changes_with_spec_messages_and_every_param() -> None:
    base = call_key("embedded", messages(), PARAMS)
    assert call_key("openai:m@http://h/v1", messages(), PARAMS) != base
    changed_text = [*messages()[:2], AIMessage(content=[{"type": "text", "text": "Since Monday."}], name="patient")]
    assert call_key("embedded", changed_text, PARAMS) != base
    changed_type = [messages()[0], AIMessage(content="Chest pain — since when?"), messages()[2]]
    assert call_key("embedded", changed_type, PARAMS) != base
    unnamed = [*messages()[:2], AIMessage(content=[{"type": "text", "text": "Since Tuesday."}])]
    assert call_key("embedded", unnamed, PARAMS) != base
    for name, value in {"max_new_tokens": 65, "json_schema": {"type": "array"}, "stop": ["\n"], "seed": 12,
                        "temperature": 0.7}.items():
        assert call_key("embedded", messages(), {**PARAMS, name: value}) != base, name
    # None means "not given": dropping it does not change the key.
    assert call_key("embedded", messages(), {k: v for k, v in PARAMS.items() if v is not None}) == base


def test_second_process_reads_what_the_first_wrote(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    with SqliteCallCache(path) as cache:
        cache.put("mine", {"content": "from the parent"})
        script = textwrap.dedent(f"""
            from simulations.bench.callcache import SqliteCallCache
            cache = SqliteCallCache({str(path)!r})
            print(cache.get("mine")["content"])
            cache.put("theirs", {{"content": "from the child"}})
            cache.close()
        """)
        out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "from the parent"
        assert cache.get("theirs") == {"content": "from the child"}


def test_corrupt_value_is_a_miss_and_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    with SqliteCallCache(path) as cache:
        cache.put("k", {"content": "fine"})
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE calls SET value = ? WHERE key = ?", ('{"content": "cut of', "k"))
    with SqliteCallCache(path) as cache:
        assert cache.get("k") is None
        cache.put("k", {"content": "fresh"})
        assert cache.get("k") == {"content": "fresh"}


def test_wal_mode_is_on(tmp_path: Path) -> None:
    with SqliteCallCache(tmp_path / "calls.sqlite"), sqlite3.connect(tmp_path / "calls.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
