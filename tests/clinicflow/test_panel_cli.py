"""`clinicflow consult --doctor panel` and its options: the [panel] settings, how the options combine, what the
terminal shows of the panel (a line per role, the consensus, the running cost, blocked orders, approvals) and the
end panel's cost lines; end to end with every model role on the scripted server of `benchmarks/` (its panel roles
follow the same six-turn script as its doctor: ask, ask, CBC, ask, chest radiograph, diagnose)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from agents.panel.policy import PanelPolicy
from clinicflow import wiring
from clinicflow.panel_view import (
    PanelPrinter,
    approval_line,
    blocked_line,
    consensus_line,
    cost_line,
    role_line,
    summary_lines,
)
from clinicflow.settings import Settings
from simulations.arms import DoctorRules
from tests.clinicflow.scripted_server import model_server, roles_on, run

# The script's cost: two question rounds ($300 each), a CBC ($8) and a chest radiograph ($33), from the fee table.
SCRIPT_COST = 300 + 8 + 300 + 33


def plain(markup: str) -> str:
    return Text.from_markup(markup).plain


# ---------------- options and settings ----------------


def test_the_panel_options_imply_the_panel_and_the_ensemble() -> None:
    assert wiring.panel_overrides() == {}
    assert wiring.panel_overrides(variant="instant") == {"doctor": "panel", "variant": "instant"}
    assert wiring.panel_overrides(ensemble=5) == {"doctor": "panel", "variant": "ensemble", "ensemble": 5}
    assert wiring.panel_overrides(aggregate="majority")["variant"] == "ensemble"
    # The budget and the approval policy go with either doctor.
    assert wiring.panel_overrides(doctor="single", budget=900.0, approve="expensive", expensive_over=250.0) == {
        "doctor": "single", "budget": 900.0, "approve": "expensive", "expensive_over": 250.0}


@pytest.mark.parametrize("options, message", [
    ({"doctor": "single", "variant": "instant"}, "--variant chooses how the panel works"),
    ({"doctor": "single", "ensemble": 3, "aggregate": "mean"}, "--ensemble and --aggregate choose"),
    ({"variant": "budgeted", "ensemble": 3}, "--ensemble sets up the ensemble variant, not --variant budgeted"),
])
def test_contradictory_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wiring.panel_overrides(**options)


def test_doctor_fields_from_the_settings() -> None:
    assert wiring.doctor_fields(Settings()) == {"doctor_mode": "single", "panel_policy": None, "budget": None,
                                                "approve": "none", "expensive_over": 500.0}
    fields = wiring.doctor_fields(Settings(panel={"doctor": "panel", "variant": "ensemble", "ensemble": 4,
                                                  "aggregate": "majority", "budget": 2000}))
    assert fields["panel_policy"] == PanelPolicy(variant="ensemble", members=4, aggregate="majority")
    assert fields["budget"] == 2000.0  # the consultation's cap; the ensemble policy itself has none
    budgeted = wiring.doctor_fields(Settings(panel={"doctor": "panel", "variant": "budgeted", "budget": 1500}))
    assert budgeted["panel_policy"] == PanelPolicy(variant="budgeted", budget=1500.0)
    with pytest.raises(ValueError, match="--budget USD"):
        wiring.doctor_fields(Settings(panel={"doctor": "panel", "variant": "budgeted"}))


def test_a_saved_doctor_block_gives_back_the_same_fields() -> None:
    fields = wiring.doctor_fields(Settings(panel={"doctor": "panel", "variant": "budgeted", "budget": 1500,
                                                  "approve": "expensive", "expensive_over": 800}))
    rules = DoctorRules(fields["doctor_mode"], fields["panel_policy"], fields["budget"], fields["approve"],
                        fields["expensive_over"])
    assert wiring.saved_doctor_fields(rules.block()) == fields
    assert wiring.saved_doctor_fields(None) is None  # a consultation saved before the panel existed


def test_the_header_describes_the_doctor() -> None:
    describe = wiring.describe_doctor
    assert describe(wiring.doctor_fields(Settings())) == "single; approval: none"
    ensemble = wiring.doctor_fields(Settings(panel={"doctor": "panel", "variant": "ensemble", "budget": 1500,
                                                    "approve": "all", "expensive_over": 800}))
    assert describe(ensemble) == ("panel (ensemble of 3, mean); budget $1,500; approval: all "
                                  "(expensive from $800)")


def test_panel_settings_from_the_environment_and_the_config_file(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[panel]\ndoctor = "panel"\nvariant = "budgeted"\nbudget = 1500\napprove = "diagnosis"\n')
    monkeypatch.setenv("CLINICFLOW_CONFIG", str(config))
    settings = Settings()
    assert (settings.panel.doctor, settings.panel.variant, settings.panel.budget) == ("panel", "budgeted", 1500.0)
    assert settings.panel.approve == "diagnosis" and settings.panel.expensive_over == 500.0
    monkeypatch.setenv("CLINICFLOW_PANEL__VARIANT", "questions")
    monkeypatch.setenv("CLINICFLOW_PANEL__BUDGET", "none")  # the environment turns the file's budget off
    settings = Settings()
    assert settings.panel.variant == "questions" and settings.panel.budget is None
    assert Settings(panel={"doctor": "single"}).panel.approve == "diagnosis"  # an option keeps the other fields


@pytest.mark.parametrize("field, value", [("doctor", "committee"), ("variant", "cheap"), ("approve", "some"),
                                          ("budget", -5), ("ensemble", 1), ("aggregate", "median")])
def test_a_bad_panel_setting_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=f"panel.{field}"):
        Settings(panel={field: value})


# ---------------- what the terminal shows ----------------


def note(role: str, output: dict | None, *, ok: bool = True, error: str | None = None, member: int = 0) -> dict:
    return {"role": role, "member": member, "ok": ok, "output": output, "error": error, "reply": "",
            "seconds": 0.25, "turn": 2}


@pytest.mark.parametrize("role, output, shown", [
    ("hypothesis", {"differential": [{"diagnosis": "Pneumonia", "probability": 0.6},
                                     {"diagnosis": "Pulmonary embolism", "probability": 0.3}],
                    "moved_by": ["F2", "F3"], "next_step": "test", "question": ""},
     "hypothesis#0 (0.2s): Pneumonia 60%, Pulmonary embolism 30%; next test; moved by F2, F3"),
    ("test_chooser", {"tests": [{"name": "CBC", "reason": ""}, {"name": "D-dimer", "reason": ""}],
                      "record_question": "latest eGFR", "image_request": ""},
     "test_chooser#0 (0.2s): CBC, D-dimer; record: latest eGFR"),
    ("challenger", {"concern": "anchoring", "alternative": "Pulmonary embolism", "falsifying_test": "CT angiogram",
                    "leader_holds": False},
     "challenger#0 (0.2s): leader challenged; alt: Pulmonary embolism; test: CT angiogram"),
    ("stewardship", {"vetoes": ["MRI brain"], "substitutions": [{"instead_of": "CT", "use": "Chest X-ray"}],
                     "note": ""},
     "stewardship#0 (0.2s): vetoes MRI brain; CT -> Chest X-ray"),
    ("checklist", {"problems": ["no test for PE"], "ready_to_diagnose": False},
     "checklist#0 (0.2s): not ready; 1 problem(s): no test for PE"),
])
def test_one_line_per_role(role: str, output: dict, shown: str) -> None:
    assert plain(role_line(note(role, output))).strip() == shown


def test_a_failed_role_says_why() -> None:
    line = plain(role_line(note("challenger", None, ok=False, error="unparseable: no JSON object", member=2)))
    assert line.strip() == "challenger#2 FAILED (0.2s): unparseable: no JSON object"


def test_the_consensus_line_names_the_action_its_reasons_and_skipped_tests() -> None:
    line = plain(consensus_line({
        "action": "test", "text": "Chest X-ray", "rationale": "hypothesis: next step test; stewardship: CT -> X-ray",
        "skipped": [{"name": "CT abdomen with contrast", "reason": "blocked: eGFR 12"}]}))
    assert "consensus: test Chest X-ray (hypothesis: next step test; stewardship: CT -> X-ray)" in line
    assert "skipped: CT abdomen with contrast: blocked: eGFR 12" in line


def test_costs_add_up_and_unmatched_tests_are_flagged() -> None:
    printer = PanelPrinter(Console(record=True, width=200))
    lines = [plain(line) for line in printer.lines({"costs": [
        {"turn": 1, "kind": "visit", "name": "visit", "canonical": "visit", "price": 300.0, "matched": True},
        {"turn": 3, "kind": "test", "name": "CBC", "canonical": "complete blood count", "price": 8.0,
         "matched": True},
        {"turn": 4, "kind": "test", "name": "Serum frobnicase", "canonical": None, "price": 150.0, "matched": False},
    ]})]
    assert [line.strip() for line in lines] == [
        "cost: +$300 visit (question round), total $300",
        "cost: +$8 CBC = complete blood count, total $308",
        "cost: +$150 Serum frobnicase (unmatched: default price), total $458",
    ]
    assert plain(cost_line({"kind": "test", "name": "x", "price": 1.5}, 1.5)).strip() == "cost: +$1.50 x, total $1.50"


def test_a_resumed_consultation_starts_from_the_cost_so_far() -> None:
    console = Console(record=True, width=200)
    printer = PanelPrinter(console)
    printer({"costs": [{"kind": "visit", "price": 300.0}, {"kind": "test", "name": "CBC", "price": 8.0}],
             "dialogue": []}, replayed=True)
    assert "cost so far: $308 (2 charges)" in console.export_text()
    assert printer.lines({"costs": [{"kind": "test", "name": "ECG", "price": 20.0}]})[0].endswith("total $328")
    assert printer.lines({"dialogue": [{"role": "doctor"}]}) == []  # nothing of its own in a plain update


def test_blocked_orders_and_approvals() -> None:
    line = plain(blocked_line({"turn": 3, "test": "CT abdomen with contrast", "reasons": [
        {"rule": "contrast_renal", "severity": "block", "reason": "eGFR 12 mL/min/1.73m2",
         "sources": ["Observation/egfr-1/_history/1"]}]}))
    assert line.strip() == "blocked: CT abdomen with contrast: eGFR 12 mL/min/1.73m2 (Observation/egfr-1/_history/1)"
    entry = {"turn": 6, "action": "diagnose", "text": "Pneumonia", "reasons": ["final diagnosis"],
             "decision": "edit", "edited": "Acute bronchitis", "note": "CXR clear"}
    assert plain(approval_line(entry)).strip() == "clinician: diagnose Pneumonia edited to Acute bronchitis (CXR clear)"


def test_the_end_panel_lines() -> None:
    transcript = {
        "doctor": {"mode": "panel", "variant": "ensemble", "members": 3, "aggregate": "majority", "budget": 1500.0},
        "consensus": [{}, {}],
        "panel": [{"ok": True}, {"ok": False}],
        "cost": {"total": 458.0, "visits": 1, "tests_total": 158.0, "unmatched": ["Serum frobnicase"]},
        "blocked": [{"turn": 3, "test": "CT abdomen with contrast", "reasons": [{"reason": "eGFR 12"}]}],
        "approvals": [{"action": "test", "text": "CBC", "decision": "reject", "note": "not needed"}],
    }
    assert [plain(line) for line in summary_lines(transcript)] == [
        "Doctor: panel, ensemble (3 panels, majority); 2 consensus turns, 1 role reply unusable",
        ("Cost: $458 (1 question round, tests $158) of a $1,500 budget; unmatched tests at the default price: "
        "Serum frobnicase"),
        "Blocked: CT abdomen with contrast (turn 3): eGFR 12",
        "Clinician: test CBC: rejected (not needed)",
    ]
    assert summary_lines({"dialogue": []}) == []  # a transcript from before the panel


# ---------------- `clinicflow consult --doctor panel`, end to end ----------------


@pytest.mark.slow
def test_a_panel_consultation_shows_its_deliberation_and_cost(tmp_path: Path, server_url: str) -> None:
    out = tmp_path / "out"
    done = run("consult", "--case", "demo:fever-cough", *roles_on(server_url), "--doctor", "panel",
               "--max-turns", "8", "--checkpoint-db", ":memory:", "--out", str(out), tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    shown = done.stdout
    assert "doctor: panel (no-budget); approval: none" in " ".join(shown.split())
    for role in ("hypothesis", "test_chooser", "challenger", "stewardship", "checklist"):
        assert shown.count(f"{role}#0 (") == 6, role  # one line per role and turn
    assert shown.count("consensus: ") == 6
    assert "consensus: test Complete blood count" in shown
    assert "cost: +$8 Complete blood count = complete blood count, total $308" in shown
    assert f"total ${SCRIPT_COST}" in shown
    transcript = json.loads((out / "transcript.json").read_text())
    assert transcript["doctor"]["mode"] == "panel" and transcript["doctor"]["variant"] == "no-budget"
    assert transcript["outcome"]["final_diagnosis"] == model_server.FINAL_DIAGNOSIS
    assert transcript["cost"]["total"] == pytest.approx(SCRIPT_COST) and transcript["cost"]["unmatched"] == []
    assert all(n["ok"] for n in transcript["panel"]) and len(transcript["panel"]) == 6 * 5
    summary = " ".join(shown.split())
    assert "Doctor: panel, no-budget; 6 consensus turns" in summary
    assert f"Cost: ${SCRIPT_COST} (2 question rounds, tests $41)" in summary


@pytest.mark.slow
def test_an_ensemble_runs_every_member_and_says_so(tmp_path: Path, server_url: str) -> None:
    out = tmp_path / "out"
    done = run("consult", "--case", "demo:fever-cough", *roles_on(server_url), "--ensemble", "2",
               "--aggregate", "majority", "--max-turns", "8", "--checkpoint-db", ":memory:", "--out", str(out),
               tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    transcript = json.loads((out / "transcript.json").read_text())
    doctor = transcript["doctor"]
    assert (doctor["mode"], doctor["variant"], doctor["members"], doctor["aggregate"]) == (
        "panel", "ensemble", 2, "majority")
    assert {n["member"] for n in transcript["panel"]} == {0, 1}
    assert "hypothesis#1 (" in done.stdout
    assert "Doctor: panel, ensemble (2 panels, majority)" in " ".join(done.stdout.split())


@pytest.mark.slow
def test_the_budgeted_panel_stays_within_its_budget(tmp_path: Path, server_url: str) -> None:
    out = tmp_path / "out"
    done = run("consult", "--case", "demo:fever-cough", *roles_on(server_url), "--variant", "budgeted",
               "--budget", "400", "--max-turns", "8", "--checkpoint-db", ":memory:", "--out", str(out),
               tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    transcript = json.loads((out / "transcript.json").read_text())
    assert transcript["doctor"]["budget"] == 400.0
    assert 0 < transcript["cost"]["total"] <= 400.0
    assert transcript["outcome"]["final_diagnosis"]  # it diagnosed instead of spending more
    assert "of a $400 budget" in " ".join(done.stdout.split())


@pytest.mark.parametrize("options, message", [
    (["--variant", "budgeted"], "the budgeted variant needs a budget: --budget USD"),
    (["--doctor", "single", "--variant", "instant"], "--variant chooses how the panel works"),
    (["--doctor", "committee"], "doctor"),
    (["--approve", "sometimes"], "approve"),
])
def test_bad_panel_options_are_clear_errors(tmp_path: Path, options: list[str], message: str) -> None:
    done = run("consult", "--case", "demo:fever-cough", *options, "--checkpoint-db", ":memory:", tmp_path=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in " ".join(done.stderr.split()) and "Traceback" not in done.stderr
