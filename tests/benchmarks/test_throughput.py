"""`benchmarks/model_server.py` (the fixed-delay stand-in model) and `benchmarks/throughput.py` (runner vs a
sequential upstream-shaped loop).

The server is checked for what the benchmark's numbers rest on: it waits at least its delay, many requests wait
together rather than in turn, every role is recognised from the prompts the project really sends, the scripted
doctor reaches a diagnosis under both protocols, usage is reported, and prefix reuse tells an append-only message
list from a flattened growing string. Timings of the runner itself are never asserted (they depend on the machine).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import REPO_ROOT

BENCH_DIR = REPO_ROOT / "benchmarks"
if str(BENCH_DIR) not in sys.path:  # the benchmarks are scripts that import each other by module name
    sys.path.insert(0, str(BENCH_DIR))

import model_server
import throughput

from agents.doctor.agentclinic import agentclinic_doctor_messages, agentclinic_system_prompt, route
from agents.doctor.messages import Exchange, build_messages
from agents.doctor.prompts import system_prompt
from simulations.cases import demo_cases, get_demo_case
from simulations.prompts import load_prompt

DELAY_MS = 200.0


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with model_server.serve_model_server(delay_ms=DELAY_MS) as url:
        yield url


def post(url: str, messages: list[dict[str, str]]) -> dict:
    response = httpx.post(f"{url}/chat/completions", json={"model": "bench", "messages": messages},
                          timeout=30.0, trust_env=False)
    response.raise_for_status()
    return response.json()


def as_dicts(messages) -> list[dict[str, str]]:
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    return [{"role": roles[m.type], "content": m.content} for m in messages]


# ---------------- the server over HTTP ----------------


def test_a_request_takes_at_least_the_delay_and_reports_usage(server: str) -> None:
    messages = [{"role": "system", "content": "You are a patient at a clinic."},
                {"role": "user", "content": "Where does it hurt?"}]
    started = time.perf_counter()
    data = post(server, messages)
    elapsed = time.perf_counter() - started
    assert elapsed >= DELAY_MS / 1000
    answer = data["choices"][0]["message"]["content"]
    assert answer == model_server.PATIENT_ANSWER and data["choices"][0]["finish_reason"] == "stop"
    chars = sum(len(m["content"]) for m in messages)
    assert data["usage"]["prompt_tokens"] == chars // 4
    assert data["usage"]["completion_tokens"] == len(answer) // 4 + 1


def test_concurrent_requests_wait_together_not_in_turn(server: str) -> None:
    n = 16

    async def many() -> float:
        async with httpx.AsyncClient(trust_env=False, timeout=30.0) as client:
            started = time.perf_counter()
            replies = await asyncio.gather(*[
                client.post(f"{server}/chat/completions",
                            json={"messages": [{"role": "system", "content": "a patient"},
                                               {"role": "user", "content": f"question {i}"}]})
                for i in range(n)
            ])
            assert all(r.status_code == 200 for r in replies)
            return time.perf_counter() - started

    elapsed = asyncio.run(many())
    delay = DELAY_MS / 1000
    assert delay <= elapsed < 3 * delay, f"{n} concurrent requests took {elapsed:.2f}s (in turn: {n * delay:.1f}s)"


def test_stats_count_roles_and_the_reset_clears_them(server: str) -> None:
    model_server.reset_stats(server)
    post(server, [{"role": "system", "content": load_prompt("agentclinic_moderator")},
                  {"role": "user", "content": "Same disease?"}])
    post(server, [{"role": "system", "content": load_prompt("rubric_system")}, {"role": "user", "content": "x"}])
    stats = model_server.fetch_stats(server)
    assert stats["requests"] == 2 and stats["roles"] == {"moderator": 1, "rubric": 1}
    model_server.reset_stats(server)
    assert model_server.fetch_stats(server)["requests"] == 0


def test_prefix_reuse_is_high_for_an_append_only_list_and_low_for_a_flattened_string(server: str) -> None:
    case = get_demo_case("demo:chest-pain")
    model_server.reset_stats(server)
    exchanges: list[Exchange] = []
    for turn in range(1, 7):  # our doctor: each call's messages extend the previous call's
        messages = as_dicts(build_messages(case.objective, exchanges, turn, 20))
        reply = post(server, messages)["choices"][0]["message"]["content"]
        exchanges.append(Exchange(reply, model_server.PATIENT_ANSWER * 3))
    appended = model_server.fetch_stats(server)
    model_server.reset_stats(server)
    exchanges = []
    for turn in range(1, 7):  # upstream's shape: a system prompt that counts turns, one user string re-sent whole
        messages = as_dicts(agentclinic_doctor_messages(case.objective, exchanges, turn, 20))
        reply = post(server, messages)["choices"][0]["message"]["content"]
        exchanges.append(Exchange(reply, model_server.PATIENT_ANSWER * 3))
    flattened = model_server.fetch_stats(server)
    assert appended["roles"] == {"doctor": 6} and flattened["roles"] == {"agentclinic_doctor": 6}
    assert appended["reusable_share"] > 0.6, appended
    assert flattened["reusable_share"] < 0.2, flattened


# ---------------- role recognition and the script (pure) ----------------


@pytest.mark.parametrize(("system", "role"), [
    (system_prompt(20), "doctor"),
    (load_prompt("patient"), "patient"),
    (load_prompt("measurement"), "measurement"),
    (load_prompt("judge_system"), "moderator"),
    (load_prompt("rubric_system"), "rubric"),
    (agentclinic_system_prompt("Assess the patient's chest pain", 3, 20), "agentclinic_doctor"),
    (load_prompt("agentclinic_patient"), "patient"),
    (load_prompt("agentclinic_measurement"), "measurement"),
    (load_prompt("agentclinic_moderator"), "moderator"),
    ("You summarise documents.", "unknown"),
])
def test_each_role_is_recognised_from_the_prompts_the_project_sends(system: str, role: str) -> None:
    assert model_server.detect_role([{"role": "system", "content": system}, {"role": "user", "content": "hi"}]) == role


def test_our_doctor_follows_the_script_turn_by_turn_and_diagnoses_on_the_final_turn() -> None:
    case = get_demo_case("demo:chest-pain")
    exchanges: list[Exchange] = []
    actions = []
    for turn in range(1, 8):
        messages = as_dicts(build_messages(case.objective, exchanges, turn, 20))
        reply = json.loads(model_server.scripted_answer("doctor", messages))
        assert set(reply) == {"action", "text", "differential", "rationale"}
        actions.append(reply["action"])
        exchanges.append(Exchange(json.dumps(reply), "fine"))
    assert actions == ["ask", "ask", "test", "ask", "test", "diagnose", "diagnose"]
    # a budget shorter than the script: the final turn's instruction brings the diagnosis forward
    messages = as_dicts(build_messages(case.objective, exchanges[:1], 2, 2))
    assert json.loads(model_server.scripted_answer("doctor", messages))["action"] == "diagnose"


def test_the_agentclinic_doctor_follows_the_script_through_a_flattened_history() -> None:
    case = get_demo_case("demo:chest-pain")
    exchanges: list[Exchange] = []
    replies = []
    for turn in range(1, 7):
        messages = as_dicts(agentclinic_doctor_messages(case.objective, exchanges, turn, 20))
        reply = model_server.scripted_answer("agentclinic_doctor", messages)
        replies.append(reply)
        exchanges.append(Exchange(reply, model_server.MEASUREMENT_ANSWER if "REQUEST TEST" in reply else "fine"))
    assert [route(r) for r in replies] == ["ask", "ask", "test", "ask", "test", "diagnose"]
    assert replies[-1] == f"DIAGNOSIS READY: {model_server.FINAL_DIAGNOSIS}"
    assert len(set(replies)) == 6
    last_turn = as_dicts(agentclinic_doctor_messages(case.objective, exchanges[:1], 2, 2))  # the last-turn nudge
    assert model_server.scripted_answer("agentclinic_doctor", last_turn).startswith("DIAGNOSIS READY")


def test_the_rubric_answer_scores_every_criterion() -> None:
    answer = json.loads(model_server.scripted_answer("rubric", []))
    assert answer == dict.fromkeys(("core_disease", "etiology", "site", "specificity", "completeness"), 1)


# ---------------- the benchmark's own pieces ----------------


def test_the_sequential_loop_ends_a_scripted_case_with_a_diagnosis(server: str) -> None:
    case = get_demo_case("demo:fever-cough")
    run = throughput.run_sequential(server, [case, case], max_turns=20)
    first = run.cases[0]
    assert first.diagnosis == model_server.FINAL_DIAGNOSIS and first.verdict == "Yes"
    assert (first.turns, first.calls) == (6, 12)  # 6 doctor, 3 patient, 2 measurement, 1 moderator
    assert first.prompt_tokens > 0 and run.calls == 24
    short = throughput.run_sequential(server, [case], max_turns=2).cases[0]  # the final-question nudge
    assert short.diagnosis == model_server.FINAL_DIAGNOSIS and (short.turns, short.calls) == (2, 4)


def test_case_selection_repeats_demo_cases_to_an_exact_count(tmp_path) -> None:
    chosen = throughput.select_cases(32, tmp_path / "absent.jsonl")
    assert chosen.attempts == 32 and chosen.repeats > 1 and len(chosen.cases) <= len(demo_cases())
    assert "demo" in chosen.label
    few = throughput.select_cases(3, None)
    assert (few.attempts, few.repeats) == (3, 1)


def test_overhead_uses_the_longest_chain_or_the_spread_total() -> None:
    from simulations.bench import AttemptResult

    def result(seconds: float) -> AttemptResult:
        return AttemptResult(run_id="r", attempt="a", case_id="c", dataset="d", repeat=0, seed=0,
                             protocol="agentclinic", measurement_mode="agentclinic", status="ok", model_seconds=seconds)

    run = throughput.OursRun("x", 2, wall=2.0, calls=0, results=[result(1.0), result(1.0), result(1.6)],
                             model_seconds=3.6, stats={})
    assert run.overhead() == pytest.approx((2.0 - 1.8) / 2.0)  # 3.6 s over 2 slots beats the 1.6 s chain
    run.concurrency = 8
    assert run.overhead() == pytest.approx((2.0 - 1.6) / 2.0)


@pytest.mark.slow
def test_a_quick_run_completes_and_prints_the_tables() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH_DIR / "throughput.py"), "--quick", "--delay-ms", "20"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\n{out}\n{done.stderr}"
    assert "sequential loop (upstream-shaped)" in out
    assert "ours (agentclinic), concurrency 1 " in out and "ours (agentclinic), concurrency 4 " in out
    assert "!!" not in out, out  # no attempt ended in error
    assert "target: at concurrency 32, >= 20x faster" in out and "target: orchestration overhead" in out
    tokens = out.split("prompt tokens per case")[1]
    assert "ours (clinicflow)" in tokens and "ours (agentclinic)" in tokens
    assert "append-only message list" in tokens and "NOT confirmed" not in tokens
