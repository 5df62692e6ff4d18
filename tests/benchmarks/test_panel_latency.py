"""The test model server's diagnostic-panel roles and `benchmarks/panel_latency.py`.

The server must answer each panel role (recognised by the first line ``Role: <role>`` of the prompts the project
really sends) with JSON that role's parser accepts, follow the doctor's six-turn script so a panel consultation ends,
and answer the four parallel roles side by side. The latency script's timing arithmetic is checked on made-up
clocks; a quick run checks it completes and prints its table (timings themselves are never asserted there).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from langchain_core.messages import BaseMessage

from agents.backends import build_chat_model
from agents.panel.brief import BriefFinding, PanelBrief
from agents.panel.roles import PARALLEL_ROLES, ROLES, Panel, parse_role_reply, role_messages
from tests.conftest import REPO_ROOT

BENCH_DIR = REPO_ROOT / "benchmarks"
if str(BENCH_DIR) not in sys.path:  # the benchmarks are scripts that import each other by module name
    sys.path.insert(0, str(BENCH_DIR))

import model_server
import panel_latency

DELAY_MS = 300.0


def as_dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    return [{"role": roles[m.type], "content": str(m.content)} for m in messages]


def brief(turn: int, max_turns: int = 20, findings: int = 2, asked: tuple[str, ...] = ()) -> PanelBrief:
    return PanelBrief(
        objective="Fever and a productive cough for two days.", turn=turn, max_turns=max_turns,
        findings=tuple(BriefFinding(f"F{i}", "patient", f"finding {i}") for i in range(1, findings + 1)),
        questions_asked=asked,
    )


def answer(role: str, panel_brief: PanelBrief) -> tuple[str, dict]:
    messages = as_dicts(role_messages(role, panel_brief))  # type: ignore[arg-type]
    detected = model_server.detect_role(messages)
    return detected, json.loads(model_server.scripted_answer(detected, messages))


@pytest.mark.parametrize("role", ROLES)
def test_each_panel_role_is_recognised_and_its_reply_parses(role: str) -> None:
    messages = as_dicts(role_messages(role, brief(3)))
    assert model_server.detect_role(messages) == f"panel:{role}"
    reply = model_server.scripted_answer(f"panel:{role}", messages)
    output, problem = parse_role_reply(role, reply)
    assert output is not None, problem
    assert problem == ""


def test_only_a_first_line_naming_a_panel_role_counts() -> None:
    assert model_server.detect_role([{"role": "system", "content": "Role: surgeon\nYou operate."}]) == "unknown"
    mentioned = "You are the patient.\nRole: hypothesis is not yours."
    assert model_server.detect_role([{"role": "system", "content": mentioned}]) == "patient"


def test_the_panel_follows_the_doctors_script_turn_by_turn() -> None:
    steps = []
    for turn in range(1, 7):
        _, hypothesis = answer("hypothesis", brief(turn, findings=turn - 1))
        _, tests = answer("test_chooser", brief(turn, findings=turn - 1))
        _, checklist = answer("checklist", brief(turn, findings=turn - 1))
        top = hypothesis["differential"][0]
        step = hypothesis["next_step"]
        said = {"ask": hypothesis["question"], "test": tests["tests"][0]["name"]}.get(step, top["diagnosis"])
        steps.append((step, said))
        assert top["diagnosis"] == model_server.FINAL_DIAGNOSIS
        # Under the panel's 0.7 commit threshold until the script diagnoses, then over it with the checklist ready.
        assert (top["probability"] >= 0.7) == (hypothesis["next_step"] == "diagnose") == checklist["ready_to_diagnose"]
        # Provenance names findings the brief holds: the newest moved the differential.
        assert hypothesis["moved_by"] == ([f"F{turn - 1}"] if turn > 1 else [])
        assert set(top["evidence"]) <= {f"F{i}" for i in range(1, turn)}
    assert steps == list(model_server.DOCTOR_SCRIPT[:-1]) + [("diagnose", model_server.FINAL_DIAGNOSIS)]


def test_the_last_turn_always_diagnoses() -> None:
    _, hypothesis = answer("hypothesis", brief(2, max_turns=2))
    assert hypothesis["next_step"] == "diagnose"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with model_server.serve_model_server(delay_ms=DELAY_MS) as url:
        yield url


def test_the_panels_roles_over_http_are_usable_and_run_side_by_side(server: str) -> None:
    panel = Panel(build_chat_model(f"openai:bench@{server}", timeout_s=30.0, max_retries=0), max_new_tokens=256)

    async def go() -> tuple[list, float]:
        await panel.run_role("hypothesis", brief(1))  # the first connection
        started = time.perf_counter()
        results = await asyncio.gather(*(panel.run_role(role, brief(3)) for role in PARALLEL_ROLES))
        return list(results), time.perf_counter() - started

    results, wall = asyncio.run(go())
    assert [r.role for r in results] == list(PARALLEL_ROLES)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    # Four calls of 300 ms each: together well under the 1.2 s they would take one after another.
    assert wall < 4 * DELAY_MS / 1000 * 0.8, wall


# ---------------- the latency script's arithmetic ----------------


def test_entry_clock_splits_deliberation_from_whole_turns() -> None:
    clock = panel_latency.EntryClock()
    # doctor at 1.0, patient at 1.2, doctor at 1.5, measurement at 1.6, doctor at 2.0
    clock.marks = [(1.0, "doctor", 1), (1.2, "patient", 1), (1.5, "doctor", 2), (1.6, "measurement", 2),
                   (2.0, "doctor", 3)]
    times = clock.times()
    assert times.doctor_turns == 3
    assert times.deliberation == pytest.approx([0.3, 0.4])
    assert times.turn == pytest.approx([0.5, 0.5])


def test_call_clock_times_each_parallel_step_from_first_start_to_last_end() -> None:
    clock = panel_latency.CallClock()
    clock.calls = [
        ("hypothesis", 0.0, 0.1),
        ("test_chooser", 0.12, 0.22), ("challenger", 0.13, 0.25), ("stewardship", 0.12, 0.21),
        ("checklist", 0.14, 0.24),
        ("hypothesis", 0.5, 0.6),
        ("challenger", 0.61, 0.71),  # a turn where only one role ran
    ]
    steps = clock.parallel_steps()
    assert steps[0] == pytest.approx((0.13, 0.1 + 0.12 + 0.09 + 0.1))
    assert steps[1] == pytest.approx((0.1, 0.1))
    assert clock.durations("hypothesis") == pytest.approx([0.1, 0.1])


def test_call_clock_reads_the_role_from_the_system_message() -> None:
    from uuid import uuid4

    clock = panel_latency.CallClock()
    for messages in (role_messages("challenger", brief(2)), [role_messages("hypothesis", brief(2))[1]]):
        run = uuid4()
        clock.on_chat_model_start({}, [messages], run_id=run)
        clock.on_llm_end(None, run_id=run)
    assert [role for role, _, _ in clock.calls] == ["challenger", "doctor"]


@pytest.mark.slow
def test_a_quick_run_completes_and_prints_the_comparison() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH_DIR / "panel_latency.py"), "--quick", "--delay-ms", "50"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False,
    )
    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\n{out}\n{done.stderr}"
    assert "!!" not in out, out  # every consultation diagnosed, and the parallel step was timed
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("single ", "panel "))}
    # 2 cases, 6 scripted turns each; one decision call per single-doctor turn, five per panel turn.
    assert lines["single"][1:3] == ["2", "12"] and lines["panel"][1:3] == ["2", "12"]
    assert float(lines["single"][7]) == 1.0 and float(lines["panel"][7]) == 5.0
    assert "ratio panel/single (medians)" in out
    assert "parallel step (test chooser, challenger, stewardship, checklist), 12 steps" in out
    assert "target: the parallel step costs about one model call" in out
