"""A benchmark run comparing the single doctor with the panel unbudgeted and budgeted, end to end on fake models:
result lines per arm, the budgeted arm within its budget where the unbudgeted one is not, a scored final
differential, and transcripts named by arm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult

from simulations.bench import RunOptions, make_plan, run_benchmark
from simulations.bench.records import AttemptResult
from simulations.cases import demo_cases
from tests.panel.fakes import RoleScriptedModel, choice_json, hypothesis_json
from tests.simulations.bench.fakes import SPECS, RoleFake, fake_models

BUDGET = 500.0
# The panel wants tests every turn, the most expensive first (a PET scan alone is $1,400): without a budget it
# spends far past BUDGET; within it, it must skip what it cannot afford.
PANEL_REPLIES = {"hypothesis": hypothesis_json(next_step="test"),
                 "test_chooser": choice_json("PET scan", "MRI brain", "Echocardiogram", "CT chest")}


class ArmFake(BaseChatModel):
    """The reasoning model of both arms: panel role calls (a system prompt opening "Role: <role>") go to the
    role-scripted panel fake, everything else to the single doctor's role-aware fake."""

    single: RoleFake
    panel: RoleScriptedModel

    @property
    def _llm_type(self) -> str:
        return "arm-fake"

    def _pick(self, messages: list[BaseMessage]) -> BaseChatModel:
        first = str(messages[0].content) if messages else ""
        return self.panel if first.startswith("Role: ") else self.single

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return self._pick(messages)._generate(messages, stop, **kwargs)

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                         **kwargs: Any) -> ChatResult:
        return await self._pick(messages)._agenerate(messages, stop, **kwargs)


async def test_single_and_panel_arms_run_end_to_end_and_the_budget_holds(tmp_path: Path) -> None:
    cases = demo_cases()[:2]
    arms = ["single", "panel", "panel:budgeted"]
    plan = make_plan(cases, protocol="clinicflow", models=SPECS, max_turns=5, arms=arms, budget=BUDGET)
    models: dict[str, BaseChatModel] = dict(fake_models())
    panel = RoleScriptedModel(replies=PANEL_REPLIES)
    models["reasoning"] = ArmFake(single=models["reasoning"], panel=panel)
    summary = await run_benchmark(plan, tmp_path, models, RunOptions(concurrency=4))
    assert summary.planned == 6 and summary.finished == 6 and summary.errors == 0, summary.results

    lines = [AttemptResult.model_validate_json(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    by_arm = {arm: [r for r in lines if r.arm == arm] for arm in arms}
    assert sorted(r.attempt for r in by_arm["single"]) == sorted(f"{c.id}|none|0" for c in cases)
    assert sorted(r.attempt for r in by_arm["panel:budgeted"]) == sorted(f"{c.id}|none|0|panel:budgeted"
                                                                         for c in cases)
    for result in by_arm["single"]:
        # The role fake asks once, orders a troponin, then diagnoses: one visit and one priced test.
        assert result.budget is None and result.cost_visits == 1 and result.cost > 300.0
        assert result.cost == result.cost_visits * 300.0 + result.cost_tests
        assert result.differential and all(set(item) == {"diagnosis", "probability", "correct"}
                                           for item in result.differential)
    for result in by_arm["panel"]:
        assert result.budget is None and result.cost > BUDGET and "PET scan" in result.tests_ordered
    for result in by_arm["panel:budgeted"]:
        assert result.budget == BUDGET and 0.0 < result.cost <= BUDGET and "PET scan" not in result.tests_ordered
        assert result.final_diagnosis and result.differential
        assert all(isinstance(item["correct"], bool) for item in result.differential)
        transcript = json.loads((tmp_path / result.transcript).read_text())
        assert result.transcript.endswith("-panel_budgeted-0.json")
        assert transcript["doctor"]["arm"] == "panel:budgeted" and transcript["doctor"]["approve"] == "none"
        assert transcript["panel"] and transcript["cost"]["total"] == result.cost
    assert panel.calls, "the panel arm never called the panel's roles"
