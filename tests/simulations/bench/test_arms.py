"""Arms of a benchmark run: labels from --doctor/--variant, the plan's attempts and keys, old runs resuming unchanged,
the result line's cost and differential fields, and distributed records carrying the arms."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from clinicflow.bench_wiring import BenchChoices, build_plan, default_run_dir
from clinicflow.settings import Settings
from simulations.arms import arm_policy, arm_setup, check_arm, parse_arms, split_choices
from simulations.bench import RunOptions, make_plan, run_benchmark
from simulations.bench.attempt import final_differential, result_from_transcript
from simulations.bench.config import RunConfig, RunEnvironment
from simulations.bench.distributed import RunRecord
from simulations.bench.models import AttemptCalls
from simulations.bench.records import AttemptResult, attempt_key, derive_seed, transcript_name
from simulations.cases import demo_cases
from tests.simulations.bench.fakes import SPECS, fake_models

ARM_FIELDS = ("arms", "budget", "ensemble_members", "ensemble_aggregate")


# -- labels -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("doctors", "variants", "arms"), [
    (None, None, ["single"]),
    (["single"], [], ["single"]),
    (["panel"], [], ["panel"]),
    (["single,panel"], ["budgeted,ensemble"], ["single", "panel:budgeted", "panel:ensemble"]),
    (["single", "panel"], ["no-budget", "instant", "questions"], ["single", "panel", "panel:instant",
                                                                  "panel:questions"]),
    (["panel", "panel,single"], ["instant", "instant"], ["panel:instant", "single"]),
])
def test_arms_come_from_doctor_and_variant(doctors, variants, arms) -> None:
    assert parse_arms(doctors, variants) == arms


@pytest.mark.parametrize(("doctors", "variants", "message"), [
    (["surgeon"], [], "unknown doctor 'surgeon'"),
    (["panel"], ["cheap"], "unknown panel variant 'cheap'"),
    (["single"], ["budgeted"], "add --doctor panel"),
    (None, ["ensemble"], "add --doctor panel"),
])
def test_bad_doctor_or_variant_choices_are_clear_errors(doctors, variants, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_arms(doctors, variants)


def test_arm_labels_are_validated_and_canonical() -> None:
    assert check_arm("panel:no-budget") == "panel" and check_arm(" panel:ensemble ") == "panel:ensemble"
    assert check_arm("single") == "single"
    for bad in ("single:budgeted", "panel:", "panel:cheap", "Panel", ""):
        with pytest.raises(ValueError, match="unknown arm"):
            check_arm(bad)
    assert split_choices(["a,b", " b ", ",c,"]) == ["a", "b", "c"]


def test_each_arm_gets_its_policy_and_runs_without_approvals() -> None:
    assert arm_setup("single", budget=None) == {"doctor_mode": "single", "panel_policy": None, "budget": None,
                                                "approve": "none"}
    budgeted = arm_setup("panel:budgeted", budget=900.0)
    assert budgeted["doctor_mode"] == "panel" and budgeted["budget"] == 900.0 and budgeted["approve"] == "none"
    assert budgeted["panel_policy"].variant == "budgeted" and budgeted["panel_policy"].budget == 900.0
    # The budget belongs to the budgeted arm only; the others are the unbudgeted comparison.
    assert arm_setup("panel", budget=900.0)["budget"] is None
    ensemble = arm_policy("panel:ensemble", members=5, aggregate="majority")
    assert ensemble is not None and (ensemble.members, ensemble.aggregate) == (5, "majority")
    assert arm_policy("panel:instant", members=5).members == 1  # only the ensemble has several panels


# -- plans ------------------------------------------------------------------------------------------------------
def _plan(**kwargs):
    return make_plan(demo_cases()[:2], protocol="clinicflow", models=SPECS, max_turns=6, **kwargs)


def test_attempts_expand_case_bias_arm_repeat_and_only_other_arms_change_keys() -> None:
    plan = _plan(arms=["single", "panel:budgeted"], budget=1000.0, repeats=2, biases=["none", "patient:recency"])
    attempts = plan.attempts()
    cases = [c.id for c in demo_cases()[:2]]
    assert len(attempts) == 2 * 2 * 2 * 2
    assert len({a.key for a in attempts}) == len(attempts) and len({a.name for a in attempts}) == len(attempts)
    single = [a for a in attempts if a.arm == "single"]
    assert {a.key for a in single} == {f"{c}|{b}|{r}" for c in cases for b in ("none", "patient:recency")
                                       for r in (0, 1)}
    panel = next(a for a in attempts if a.arm == "panel:budgeted" and a.bias == "none" and a.repeat == 1)
    assert panel.key == f"{panel.case.id}|none|1|panel:budgeted"
    assert panel.name == transcript_name(panel.case.id, "none", 1, "panel:budgeted")
    assert panel.name.endswith("-panel_budgeted-1") and ":" not in panel.name
    assert transcript_name("demo:x", "none", 0) == "demo_x-0" == transcript_name("demo:x", "none", 0, "single")
    assert attempt_key("c", "none", 3) == "c|none|3" == attempt_key("c", "none", 3, "single")
    # Whole passes first: every attempt of repeat 0 comes before any of repeat 1.
    repeats = [a.repeat for a in attempts]
    assert repeats == sorted(repeats)
    assert plan.config.arms == ["single", "panel:budgeted"] and plan.config.budget == 1000.0


def test_the_seed_does_not_depend_on_the_arm() -> None:
    # Every arm of a case meets the same seeded patient: the arms compare paired.
    assert derive_seed(3, "c", "none", 0) == derive_seed(3, "c", "none", 0)
    plan = _plan(arms=["single", "panel"])
    keys = {(a.case.id, a.arm): a for a in plan.attempts()}
    case = demo_cases()[0].id
    assert keys[(case, "single")].key != keys[(case, "panel")].key


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"arms": ["panel:budgeted"]}, "needs --budget"),
    ({"arms": ["panel:budgeted"], "budget": 0.0}, "needs --budget"),
    ({"arms": ["single", "panel"], "budget": 500.0}, "budgeted panel variant only"),
    ({"arms": ["panel:ensemble"], "ensemble_members": 1}, "members"),
    ({"arms": ["panel:ensemble"], "ensemble_aggregate": "median"}, "aggregation 'median'"),
    ({"arms": ["panel:fancy"]}, "unknown arm"),
    ({"arms": ["single", "panel"], "biases": ["doctor:recency"]}, "single doctor only"),
])
def test_bad_arm_options_fail_before_anything_runs(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        _plan(**kwargs)


def test_ensemble_options_do_not_change_a_run_without_the_ensemble() -> None:
    assert _plan(arms=["panel"], ensemble_members=7, ensemble_aggregate="majority").config == _plan(arms=["panel"]).config
    assert _plan(arms=["panel:ensemble"], ensemble_members=5).config.ensemble_members == 5


def test_a_config_without_arms_hashes_and_compares_as_before_arms_existed(tmp_path: Path) -> None:
    config = _plan().config
    before = config.model_dump(mode="json")
    for name in ARM_FIELDS:
        before.pop(name)
    # What config.json of an earlier run holds reads back as the same experiment.
    assert RunConfig.model_validate(before).differences(config) == []
    assert config.identity_json() == json.dumps(before, separators=(",", ":"))
    settings = Settings(bench={"runs_dir": tmp_path})
    digest = hashlib.sha256(json.dumps(before, separators=(",", ":")).encode()).hexdigest()[:8]
    assert default_run_dir(settings, _plan()).name == f"demo-clinicflow-{digest}"
    assert default_run_dir(settings, _plan(arms=["single", "panel"])) != default_run_dir(settings, _plan())


def test_bench_wiring_turns_choices_into_arms(tmp_path: Path) -> None:
    settings = Settings(bench={"runs_dir": tmp_path})
    choices = BenchChoices(datasets=["demo"], limit=2, doctors=["single,panel"], variants=["budgeted", "instant"],
                           budget=750.0)
    plan, _ = build_plan(settings, choices, dict(SPECS))
    assert plan.config.arms == ["single", "panel:budgeted", "panel:instant"] and plan.config.budget == 750.0
    assert len(plan.attempts()) == 2 * 3
    with pytest.raises(ValueError, match="needs --budget"):
        build_plan(settings, BenchChoices(datasets=["demo"], doctors=["panel"], variants=["budgeted"]), dict(SPECS))


def test_a_distributed_record_carries_the_arms() -> None:
    plan = _plan(arms=["single", "panel:ensemble"], ensemble_members=4, ensemble_aggregate="majority")
    record = RunRecord(run_id="r", plan=plan, environment=RunEnvironment(command=["test"]))
    again = RunRecord.from_json(record.to_json())
    assert again.plan.config == plan.config
    assert [(a.key, a.arm) for a in again.plan.attempts()] == [(a.key, a.arm) for a in plan.attempts()]


async def test_a_run_made_before_arms_resumes_without_redoing_anything(tmp_path: Path) -> None:
    await run_benchmark(_plan(), tmp_path, fake_models(), RunOptions())
    # Make the directory look like one written before arms existed: no arm fields in the config or the results.
    config_path = tmp_path / "config.json"
    document = json.loads(config_path.read_text())
    for name in ARM_FIELDS:
        document["config"].pop(name)
    config_path.write_text(json.dumps(document))
    results = tmp_path / "results.jsonl"
    old_lines = []
    for line in results.read_text().splitlines():
        row = json.loads(line)
        for name in ("arm", "cost", "cost_visits", "cost_tests", "unmatched_tests", "blocked_orders",
                     "differential", "panel_failed_roles", "budget"):
            row.pop(name)
        row["attempt"] = f"{row['case_id']}|{row['bias']}|{row['repeat']}"  # the key format of those runs
        old_lines.append(json.dumps(row))
    results.write_text("\n".join(old_lines) + "\n")
    again = fake_models()
    summary = await run_benchmark(_plan(), tmp_path, again, RunOptions())
    assert summary.skipped == summary.planned == 2 and summary.finished == 0
    assert again["reasoning"].calls == []
    assert all(r.arm == "single" and r.cost == 0.0 and r.differential == [] for r in summary.results)
    # Adding an arm is a different experiment: refused rather than mixed into the old directory.
    from simulations.bench import ConfigMismatchError

    with pytest.raises(ConfigMismatchError, match="arms"):
        await run_benchmark(_plan(arms=["single", "panel"]), tmp_path, fake_models(), RunOptions())


# -- result lines -----------------------------------------------------------------------------------------------
BASE = {"run_id": "r", "attempt": "c|none|0|panel:budgeted", "case_id": "c", "dataset": "demo", "repeat": 0,
        "seed": 1, "protocol": "clinicflow", "measurement_mode": "strict",
        "correct_diagnosis": "Myocardial infarction", "arm": "panel:budgeted", "budget": 1000.0}


def _transcript(final: str, items: list[tuple[str, float]], **extra) -> dict:
    return {
        "outcome": {"final_diagnosis": final, "ended_by": "doctor"},
        "differentials": [{"turn": 1, "items": [{"diagnosis": "Anything", "probability": 1.0}]},
                          {"turn": 3, "items": [{"diagnosis": d, "probability": p} for d, p in items]}],
        **extra,
    }


def test_the_final_item_takes_the_verdict_and_the_others_a_name_match() -> None:
    transcript = _transcript("Unstable angina", [("Acute inferior myocardial infarction", 0.4),
                                                 ("Unstable angina", 0.3), ("Not myocardial infarction", 0.2),
                                                 ("Infarction", 0.1)])
    items = final_differential(transcript, "Myocardial infarction", True)
    assert items == [
        {"diagnosis": "Acute inferior myocardial infarction", "probability": 0.4, "correct": True},
        {"diagnosis": "Unstable angina", "probability": 0.3, "correct": True},  # the judge said yes to it
        {"diagnosis": "Not myocardial infarction", "probability": 0.2, "correct": False},  # hedged
        {"diagnosis": "Infarction", "probability": 0.1, "correct": False},
    ]
    # One spelling, abbreviations written out.
    british = final_differential(_transcript("x", [("subarachnoid haemorrhage", 0.6), ("SAH", 0.4)]),
                                 "Subarachnoid hemorrhage", None)
    assert [i["correct"] for i in british] == [True, True]
    # The judge said no to the final diagnosis: its item is wrong whatever its name.
    wrong = final_differential(_transcript("Myocardial infarction", [("myocardial-infarction", 0.9)]),
                               "Myocardial infarction", False)
    assert wrong == [{"diagnosis": "myocardial-infarction", "probability": 0.9, "correct": False}]
    # No verdict: every item by its name.
    unjudged = final_differential(transcript, "Myocardial infarction", None)
    assert [i["correct"] for i in unjudged] == [True, False, False, False]
    assert final_differential({"outcome": {}}, "x", True) == []


def test_a_result_line_carries_arm_cost_safety_panel_and_differential() -> None:
    transcript = _transcript(
        "Myocardial infarction", [("Myocardial infarction", 0.8), ("Aortic dissection", 0.2)],
        verdict={"correct": True, "method": "model", "raw": "Yes"},
        totals={"turns": 3},
        cost={"entries": [], "total": 612.0, "visits": 1, "tests_total": 312.0, "unmatched": ["Zebra panel"]},
        blocked=[{"turn": 2, "test": "CT with contrast", "reasons": []}],
        panel=[{"role": "hypothesis", "ok": True}, {"role": "challenger", "ok": False},
               {"role": "checklist", "ok": False}, {"role": "stewardship", "ok": True}],
    )
    result = result_from_transcript(BASE, transcript, AttemptCalls())
    assert result.arm == "panel:budgeted" and result.budget == 1000.0
    assert (result.cost, result.cost_visits, result.cost_tests) == (612.0, 1, 312.0)
    assert result.unmatched_tests == ["Zebra panel"] and result.blocked_orders == 1 and result.panel_failed_roles == 2
    assert [(i["diagnosis"], i["correct"]) for i in result.differential] == [("Myocardial infarction", True),
                                                                           ("Aortic dissection", False)]
    line = AttemptResult.model_validate_json(result.model_dump_json())
    assert line == result
    # A transcript from before cost and panel existed gives zeros, not an error.
    old = result_from_transcript(BASE, {"outcome": {"final_diagnosis": "x"}}, AttemptCalls())
    assert (old.cost, old.blocked_orders, old.panel_failed_roles, old.differential) == (0.0, 0, 0, [])


# -- the command line -------------------------------------------------------------------------------------------
def test_bench_run_refuses_a_budgeted_arm_without_a_budget(tmp_path: Path) -> None:
    from tests.clinicflow.test_cli import clinicflow

    done = clinicflow("bench", "run", "--dataset", "demo", "--doctor", "single,panel", "--variant", "budgeted",
                      "--run-dir", str(tmp_path / "run"), cache_dir=tmp_path)
    assert done.returncode == 2 and "needs --budget" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()
    bad = clinicflow("bench", "run", "--dataset", "demo", "--doctor", "panel", "--variant", "cheap",
                     cache_dir=tmp_path)
    assert bad.returncode == 2 and "unknown panel variant 'cheap'" in bad.stderr
