"""A reply that parses can still be useless: repeats and echoes are repaired, then replaced."""

from __future__ import annotations

from agents.doctor import Doctor, DoctorDecision, Exchange
from agents.doctor.prompts import SAFE_QUESTION, SAFE_QUESTIONS
from agents.doctor.review import review_problem
from tests.doctor.fakes import decision_json, scripted

OBJECTIVE = "Evaluate the patient presenting with difficulty walking."
ASKED = decision_json("ask", "When did the walking problem start?")
HISTORY = [Exchange(ASKED, "It started about two weeks ago and keeps getting worse.", "patient")]


def _ask(text: str) -> DoctorDecision:
    return DoctorDecision(action="ask", text=text)


def test_repeated_question_is_flagged_case_and_punctuation_insensitively() -> None:
    problem = review_problem(_ask("when did the walking problem start"), OBJECTIVE, HISTORY, final=False)
    assert problem is not None and "already asked" in problem


def test_echo_of_the_patients_answer_is_flagged() -> None:
    problem = review_problem(
        _ask("It started about two weeks ago and keeps getting worse."), OBJECTIVE, HISTORY, final=False
    )
    assert problem is not None and "patient's words" in problem


def test_new_question_and_short_overlaps_pass() -> None:
    assert review_problem(_ask("Do you drink alcohol?"), OBJECTIVE, HISTORY, final=False) is None
    assert review_problem(_ask("Worse?"), OBJECTIVE, HISTORY, final=False) is None
    # The same text as a test order is not a repeat of the question.
    test = DoctorDecision(action="test", text="When did the walking problem start?")
    assert review_problem(test, OBJECTIVE, HISTORY, final=False) is None


def test_final_turn_only_needs_a_derivable_diagnosis() -> None:
    assert review_problem(_ask("Any fever?"), OBJECTIVE, HISTORY, final=True) is not None
    assert (
        review_problem(
            _ask("Any fever?"),
            OBJECTIVE,
            HISTORY,
            final=True,
            prior_differential=[{"diagnosis": "PML", "probability": 0.5}],
        )
        is None
    )
    assert (
        review_problem(
            _ask("When did the walking problem start?"),
            OBJECTIVE,
            HISTORY,
            final=True,
            prior_differential=[{"diagnosis": "PML", "probability": 0.5}],
        )
        is None
    )


async def test_repeated_question_gets_a_repair_call_and_the_new_question_is_used() -> None:
    model = scripted(ASKED, decision_json("ask", "Have you started any new medicines?"))
    turn = await Doctor(model).decide(OBJECTIVE, HISTORY, 2, 8)
    assert (turn.calls, turn.degraded, turn.decision.text) == (2, False, "Have you started any new medicines?")
    assert "already asked" in model.calls[1][0][-1].content  # the repair prompt says what was wrong


async def test_a_model_stuck_on_copying_gets_successive_safe_questions_and_loses_its_repairs() -> None:
    # The model copies its previous reply forever, as SmolLM2 does under greedy decoding.
    model = scripted(*[ASKED] * 20)
    doctor, exchanges = Doctor(model), list(HISTORY)
    asked, calls = [], []
    for turn in range(2, 6):
        outcome = await doctor.decide(OBJECTIVE, exchanges, turn, 8)
        assert outcome.degraded
        asked.append(outcome.decision.text)
        calls.append(outcome.calls)
        exchanges.append(Exchange(outcome.reply, "I am not sure.", "patient"))
    assert asked == list(SAFE_QUESTIONS[:4])
    assert asked[0] == SAFE_QUESTION
    # After NO_REPAIR_AFTER_FALLBACKS (2) fallback turns in the dialogue, a failing reply gets no repair call.
    assert calls == [2, 2, 1, 1]
    # ...except on the final turn, the last chance of a real diagnosis.
    final = await doctor.decide(OBJECTIVE, exchanges, 8, 8)
    assert final.calls == 2 and final.forced


def test_count_fallbacks_only_counts_synthesised_replies() -> None:
    from agents.doctor.fallbacks import count_fallbacks, safe_question

    synthesised = safe_question().model_dump_json()
    assert count_fallbacks([synthesised, ASKED, "not json", synthesised]) == 2
    # The model writing the same question itself is not a fallback.
    assert count_fallbacks([decision_json("ask", SAFE_QUESTION)]) == 0


async def test_final_turn_without_any_diagnosis_spends_one_repair_call() -> None:
    model = scripted(
        decision_json("ask", "Any fever?"), "The most likely diagnosis is progressive multifocal leukoencephalopathy."
    )
    turn = await Doctor(model).decide(OBJECTIVE, HISTORY, 8, 8)
    assert (turn.decision.action, turn.decision.text) == ("diagnose", "progressive multifocal leukoencephalopathy")
    assert (turn.calls, turn.forced, turn.degraded) == (2, False, False)
    # The repair is a short fresh context: the facts learned, no earlier replies to copy.
    repair = model.calls[1][0]
    assert [m.type for m in repair] == ["system", "human"]
    assert f"- Patient: {HISTORY[0].answer}" in repair[1].content
    assert "final turn" in repair[1].content and "The most likely diagnosis is" in repair[1].content
    assert turn.reply.startswith("The most likely diagnosis is")


def test_narration_instead_of_a_question_is_flagged_but_imperatives_pass() -> None:
    narration = _ask("The child has been very fussy and has shown decreased interest in feeding")
    assert "describes the patient" in (review_problem(narration, OBJECTIVE, HISTORY, final=False) or "")
    assert review_problem(_ask("Please describe the pain in your legs."), OBJECTIVE, HISTORY, final=False) is None
    assert review_problem(_ask("Tell me about your medicines"), OBJECTIVE, HISTORY, final=False) is None


def test_diagnosis_that_only_restates_the_objective_is_flagged_before_the_final_turn() -> None:
    objective = "Evaluate and diagnose the patient presenting with gait and limb ataxia."
    symptoms = DoctorDecision(action="diagnose", text="Gait and limb ataxia")
    assert "presenting symptoms" in (review_problem(symptoms, objective, [], final=False) or "")
    assert review_problem(symptoms, objective, [], final=True) is None
    disease = DoctorDecision(action="diagnose", text="Progressive multifocal leukoencephalopathy")
    assert review_problem(disease, objective, [], final=False) is None
    # A test result that names the disease (AgentClinic's leaked cases) does not make the diagnosis a copy.
    leaked = [Exchange(decision_json("test", "MRI"), "RESULTS: consistent with multiple sclerosis", "measurement")]
    assert (
        review_problem(DoctorDecision(action="diagnose", text="Multiple sclerosis"), objective, leaked, final=False)
        is None
    )


def test_a_copied_placeholder_is_not_a_decision() -> None:
    from agents.doctor.decision import DoctorDecision
    from agents.doctor.review import review_problem

    copied = DoctorDecision(action="diagnose", text="<most likely disease>",
                            differential=[{"diagnosis": "<most likely disease>", "probability": 0.6}])
    assert copied.differential == []
    assert review_problem(copied, "Evaluate chest pain.", [], final=False) is not None


def test_copying_the_fallback_note_is_refused_even_on_the_final_turn() -> None:
    from agents.doctor.fallbacks import FALLBACK_RATIONALE

    copied = DoctorDecision(action="diagnose", text=FALLBACK_RATIONALE, differential=[], rationale="")
    assert "fallback note" in review_problem(copied, "Chest pain.", [], final=False)
    assert "fallback note" in review_problem(copied, "Chest pain.", [], final=True)
