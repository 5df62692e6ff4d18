"""The clinician's approval point at the terminal: the request as shown, the typed choice read into the resume value
the graph accepts, and `clinicflow consult --approve` end to end (edit the final diagnosis; pause with no one at the
terminal, then `--resume` from the checkpoint), every model role on the scripted server of `benchmarks/`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from rich.text import Text

from clinicflow import approval_prompt, cli
from clinicflow.approval_prompt import (
    approval_resume,
    ask_approval,
    format_approval,
    format_differential,
    format_price,
    parse_decision,
    read_verdict_from,
)
from graphs.approvals import approval_request, read_verdict
from tests.clinicflow.scripted_server import model_server, roles_on, run


def plain(markup: str) -> str:
    return Text.from_markup(markup).plain


def scripted(*lines: str):
    """A reader that types ``lines`` in turn and records each prompt; past the end it is Ctrl-D (EOFError)."""
    typed = list(lines)
    prompts: list[str] = []

    def read(prompt: str) -> str:
        prompts.append(prompt)
        if not typed:
            raise EOFError
        return typed.pop(0)

    read.prompts = prompts  # type: ignore[attr-defined]
    return read


TEST_REQUEST = approval_request("test", "CT abdomen with contrast [F3]", ["expensive: $1,200 (approval from $500)"],
                                price=1200.0, differential=[("Appendicitis", 0.55), ("Diverticulitis", 0.25)])
DIAGNOSIS_REQUEST = approval_request("diagnose", "Community-acquired pneumonia", ["final diagnosis"],
                                     differential=[("Community-acquired pneumonia", 0.8)])


# ---------------- formatting ----------------


def test_the_request_shows_action_text_price_reasons_and_differential() -> None:
    shown = plain(format_approval(TEST_REQUEST))
    assert shown.startswith("Approval needed: order the test")
    # Brackets in the text are the text's, not markup: "[F3]" survives.
    assert "CT abdomen with contrast [F3]" in shown
    assert "price: $1,200" in shown
    assert "why approval: expensive: $1,200 (approval from $500)" in shown
    assert "differential: Appendicitis 55%, Diverticulitis 25%" in shown
    assert "Approve, edit or reject?" in shown


def test_a_diagnosis_request_has_no_price_line() -> None:
    shown = plain(format_approval(DIAGNOSIS_REQUEST))
    assert "commit to the diagnosis" in shown and "price:" not in shown
    assert "Community-acquired pneumonia 80%" in shown


@pytest.mark.parametrize("price, text", [(None, "-"), (8.0, "$8"), (1250.0, "$1,250"), (12.5, "$12.50")])
def test_prices_read_as_dollars(price: float | None, text: str) -> None:
    assert format_price(price) == text


def test_the_differential_is_capped_and_tolerates_missing_probabilities() -> None:
    items = [[f"D{i}", 0.1] for i in range(8)] + [["no probability"]]
    assert format_differential(items, limit=2) == "D0 10%, D1 10%"
    assert format_differential([["Only a name"]]) == "Only a name"
    assert format_differential([]) == "none given"


# ---------------- reading the choice ----------------


@pytest.mark.parametrize("typed, decision", [
    ("a", "approve"), ("A", "approve"), (" approve ", "approve"), ("y", "approve"),
    ("e", "edit"), ("EDIT", "edit"), ("r", "reject"), ("no", "reject"), ("x", None), ("", None),
])
def test_typed_choices(typed: str, decision: str | None) -> None:
    assert parse_decision(typed) == decision


def test_resume_values_are_what_the_graph_reads() -> None:
    assert approval_resume("approve", text="ignored", note="ignored") == {
        "decision": "approve", "text": None, "note": None}
    assert approval_resume("edit", text="  Acute bronchitis ") == {
        "decision": "edit", "text": "Acute bronchitis", "note": None}
    assert approval_resume("reject", note="   ") == {"decision": "reject", "text": None, "note": None}
    for value in (approval_resume("edit", text="Acute bronchitis", note="clinical picture"),
                  approval_resume("reject", note="too invasive"), approval_resume("approve")):
        verdict = read_verdict(value)
        assert (verdict.decision, verdict.text, verdict.note) == (value["decision"], value["text"], value["note"])


def test_an_edit_without_text_or_an_unknown_decision_is_refused() -> None:
    with pytest.raises(ValueError, match="new text"):
        approval_resume("edit", text="  ")
    with pytest.raises(ValueError, match="approve, edit or reject"):
        approval_resume("maybe")  # type: ignore[arg-type]


def test_edit_asks_for_the_new_text_until_there_is_some() -> None:
    read = scripted("what?", "e", "", "Pulmonary embolism")
    assert read_verdict_from(DIAGNOSIS_REQUEST, read) == {
        "decision": "edit", "text": "Pulmonary embolism", "note": None}
    assert read.prompts[0] == approval_prompt.CHOICE_LINE and read.prompts[1] == approval_prompt.CHOICE_LINE
    assert read.prompts[2:] == ["Diagnosis to record instead"] * 2


def test_editing_a_test_asks_for_the_test_to_order_instead() -> None:
    read = scripted("e", "CT abdomen without contrast")
    assert read_verdict_from(TEST_REQUEST, read)["text"] == "CT abdomen without contrast"
    assert read.prompts[-1] == "Test to order instead"


def test_reject_takes_an_optional_note() -> None:
    assert read_verdict_from(TEST_REQUEST, scripted("r", "radiation dose"))["note"] == "radiation dose"
    assert read_verdict_from(TEST_REQUEST, scripted("reject", ""))["note"] is None


def test_end_of_input_propagates_so_the_consultation_pauses() -> None:
    with pytest.raises(EOFError):
        read_verdict_from(TEST_REQUEST, scripted())
    with pytest.raises(EOFError):
        read_verdict_from(TEST_REQUEST, scripted("e"))  # gone before the new text


def test_ask_approval_shows_the_request_and_returns_the_verdict() -> None:
    read = scripted("r", "not now")
    with approval_prompt.console.capture() as captured:
        verdict = asyncio.run(ask_approval(TEST_REQUEST, read))
    assert verdict == {"decision": "reject", "text": None, "note": "not now"}
    shown = captured.get()
    assert "Approval needed" in shown and "$1,200" in shown
    assert read.prompts == [approval_prompt.CHOICE_LINE, "Note for the record (Enter for none)"]


def test_the_consult_callback_sends_approvals_to_the_approval_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    typed = iter(["e", "Acute bronchitis"])
    monkeypatch.setattr(approval_prompt, "_prompt", lambda label: next(typed))
    with approval_prompt.console.capture():
        assert asyncio.run(cli._ask_person(DIAGNOSIS_REQUEST)) == {
            "decision": "edit", "text": "Acute bronchitis", "note": None}
    # A patient's question still reads a plain answer.
    monkeypatch.setattr(cli.Prompt, "ask", lambda *args, **kwargs: "Since Tuesday.")
    with cli.console.capture():
        answer = asyncio.run(cli._ask_person({"kind": "answer", "action": "ask", "text": "Since when?",
                                              "prompt": "Patient's answer"}))
    assert answer == "Since Tuesday."


# ---------------- `clinicflow consult --approve`, end to end ----------------


@pytest.mark.slow
def test_the_clinician_edits_the_final_diagnosis(tmp_path: Path, server_url: str) -> None:
    out = tmp_path / "out"
    done = run("consult", "--case", "demo:fever-cough", *roles_on(server_url), "--approve", "diagnosis",
               "--max-turns", "8", "--checkpoint-db", str(tmp_path / "ck.sqlite"), "--out", str(out),
               tmp_path=tmp_path, stdin="e\nAcute bronchitis\n")
    assert done.returncode == 0, done.stdout + done.stderr
    shown = " ".join(done.stdout.split())
    assert "Approval needed: commit to the diagnosis" in shown
    assert "why approval: final diagnosis" in shown
    transcript = json.loads((out / "transcript.json").read_text())
    assert transcript["outcome"]["final_diagnosis"] == "Acute bronchitis"
    [approval] = transcript["approvals"]
    assert approval["action"] == "diagnose" and approval["decision"] == "edit"
    assert approval["text"] == model_server.FINAL_DIAGNOSIS and approval["edited"] == "Acute bronchitis"
    assert transcript["doctor"]["approve"] == "diagnosis"
    # The scripted doctor asked, tested and diagnosed; no test needed approval under this policy.
    assert len(transcript["approvals"]) == 1
    # The graph's record of the verdict, as it happened and in the end panel.
    assert "clinician: diagnose Community-acquired pneumonia edited to Acute bronchitis" in shown
    assert "Clinician: diagnose Community-acquired pneumonia: edited to Acute bronchitis" in shown


@pytest.mark.slow
def test_an_unanswered_approval_pauses_and_resumes_from_the_checkpoint(tmp_path: Path, server_url: str) -> None:
    db = tmp_path / "ck.sqlite"
    # No one at the terminal: the first test order waits for approval, and the consultation pauses there.
    first = run("consult", "--case", "demo:fever-cough", *roles_on(server_url), "--doctor", "panel",
                "--approve", "all", "--max-turns", "8", "--checkpoint-db", str(db), tmp_path=tmp_path)
    assert first.returncode == 3, first.stdout + first.stderr
    assert "Approval needed: order the test" in first.stdout and "Complete blood count" in first.stdout
    hint = first.stderr.split("Continue with:", 1)[1].split()
    thread = hint[hint.index("--resume") + 1]

    # Another process: the checkpoint holds the doctor (the panel), the policy and the pending order; approving
    # every order in turn and the diagnosis finishes the consultation.
    out = tmp_path / "out"
    second = run("consult", "--resume", thread, "--checkpoint-db", str(db), "--out", str(out), tmp_path=tmp_path,
                 stdin="a\na\na\n")
    assert second.returncode == 0, second.stdout + second.stderr
    transcript = json.loads((out / "transcript.json").read_text())
    assert transcript["thread_id"] == thread and transcript["doctor"]["mode"] == "panel"
    assert transcript["outcome"]["final_diagnosis"] == model_server.FINAL_DIAGNOSIS
    assert [(a["action"], a["text"], a["decision"]) for a in transcript["approvals"]] == [
        ("test", "Complete blood count", "approve"), ("test", "Chest radiograph", "approve"),
        ("diagnose", model_server.FINAL_DIAGNOSIS, "approve")]
    # Nothing was redone: one question round before the pause, one after, and each test charged once.
    assert transcript["cost"]["total"] == pytest.approx(300 + 8 + 300 + 33)
    doctor_turns = [e["turn"] for e in transcript["dialogue"] if e["role"] == "doctor"]
    assert doctor_turns == sorted(set(doctor_turns)) == list(range(1, 7))
    # The resumed run shows the cost so far, then goes on adding to it.
    assert "cost so far: $300" in second.stdout and "total $641" in second.stdout
