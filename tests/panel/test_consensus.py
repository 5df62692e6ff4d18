"""The consensus rules: one action from the roles' outputs, with vetoes, safety blocks, budget and failures."""

from __future__ import annotations

import json
from dataclasses import replace

from agents.doctor.prompts import SAFE_QUESTIONS
from agents.panel import (
    VISIT_PRICE,
    BriefFinding,
    Consensus,
    CostLedger,
    PanelBrief,
    PanelPolicy,
    PatientFacts,
    RoleResult,
    SkippedTest,
    decide_consensus,
    lookup,
    parse_role_reply,
)
from tests.panel.fakes import challenge_json, checklist_json, choice_json, hypothesis_json, stewardship_json

BRIEF = PanelBrief(
    objective="A 58-year-old with abdominal pain and fever.",
    turn=3,
    max_turns=10,
    findings=(BriefFinding("F1", "patient", "Right upper quadrant pain."), BriefFinding("F2", "test:CBC", "WBC 15.")),
)
NO_BUDGET = PanelPolicy()
DIFF = [("Acute cholecystitis", 0.55), ("Acute pancreatitis", 0.25)]
KIDNEY_FAILURE = PatientFacts(labs={"eGFR": (20, "mL/min/1.73m2", "Observation/egfr/_history/1")})


def result(role: str, reply: str, member: int = 0) -> RoleResult:
    output, error = parse_role_reply(role, reply)  # type: ignore[arg-type]
    assert output is not None, error
    return RoleResult(role=role, member=member, ok=True, output=output.model_dump(mode="json"), error=None,  # type: ignore[arg-type]
                      reply=reply)


def failed(role: str, error: str = "unparseable: no JSON object", member: int = 0) -> RoleResult:
    return RoleResult(role=role, member=member, ok=False, output=None, error=error, reply="garbage")  # type: ignore[arg-type]


def hyp(step: str = "test", question: str = "", diff: list[tuple[str, float]] = DIFF, member: int = 0,
        moved_by: list[str] | None = None) -> RoleResult:
    return result("hypothesis", hypothesis_json(diff, next_step=step, question=question, moved_by=moved_by), member)


def decide(results: list[RoleResult], *, differential: list[tuple[str, float]] = DIFF, brief: PanelBrief = BRIEF,
           policy: PanelPolicy = NO_BUDGET, ledger: CostLedger | None = None, facts: PatientFacts | None = None,
           final: bool = False) -> Consensus:
    return decide_consensus(brief, results, differential, policy, ledger=ledger or CostLedger(), facts=facts,
                            final=final)


def test_the_final_turn_diagnoses_the_top_of_the_differential() -> None:
    consensus = decide([hyp("test"), result("test_chooser", choice_json("Abdominal ultrasound"))], final=True)
    assert (consensus.action, consensus.text) == ("diagnose", "Acute cholecystitis")
    assert consensus.priced == [] and "final turn" in consensus.rationale


def test_the_instant_variant_diagnoses_at_once() -> None:
    consensus = decide([hyp("ask", question="Where is the pain?")], policy=PanelPolicy.build("instant"))
    assert (consensus.action, consensus.text) == ("diagnose", "Acute cholecystitis")


def test_a_diagnosis_is_never_empty_when_a_hypothesis_named_one() -> None:
    consensus = decide([hyp(diff=[("Biliary colic", 0.4)])], differential=[], final=True)
    assert consensus.text == "Biliary colic" and consensus.differential == [("Biliary colic", 0.4)]
    nothing = decide([failed("hypothesis")], differential=[], final=True)
    assert (nothing.action, nothing.text) == ("diagnose", "No diagnosis reached")


def test_the_threshold_commits_unless_the_challenger_objects_or_the_checklist_is_not_ready() -> None:
    confident = [("Acute cholecystitis", 0.8), ("Acute pancreatitis", 0.1)]
    base = [hyp("test", diff=confident), result("test_chooser", choice_json("Abdominal ultrasound"))]
    holds, ready = result("challenger", challenge_json()), result("checklist", checklist_json(ready=True))

    consensus = decide([*base, holds, ready], differential=confident)
    assert (consensus.action, consensus.text) == ("diagnose", "Acute cholecystitis")

    objection = result("challenger", challenge_json(leader_holds=False, concern="No Murphy sign."))
    consensus = decide([*base, objection, ready], differential=confident)
    assert consensus.action == "test" and consensus.text == "Abdominal ultrasound"
    assert "No Murphy sign." in consensus.rationale

    consensus = decide([*base, holds, result("checklist", checklist_json("Lipase not checked."))],
                       differential=confident)
    assert consensus.action == "test"

    # A checklist that failed does not hold the panel back.
    consensus = decide([*base, holds, failed("checklist")], differential=confident)
    assert consensus.action == "diagnose" and consensus.failed_roles == ["checklist#0: unparseable: no JSON object"]


def test_most_members_saying_diagnose_commit_within_a_tenth_of_the_threshold() -> None:
    members = [hyp("diagnose", member=0), hyp("diagnose", member=1), hyp("test", member=2)]
    assert decide(members, differential=[("Acute cholecystitis", 0.65)]).action == "diagnose"
    assert decide(members, differential=[("Acute cholecystitis", 0.55)]).action != "diagnose"
    assert decide(members[1:], differential=[("Acute cholecystitis", 0.65)]).action != "diagnose"  # 1 of 2


def test_a_vetoed_test_is_skipped_and_reported() -> None:
    consensus = decide([hyp("test"), result("test_chooser", choice_json("CT abdomen", "Abdominal ultrasound")),
                        result("stewardship", stewardship_json("CT abdomen"))])
    assert (consensus.action, consensus.text) == ("test", "Abdominal ultrasound")
    assert consensus.skipped == [SkippedTest("CT abdomen", "vetoed by stewardship")]
    assert consensus.priced == [lookup("Abdominal ultrasound").to_dict()]
    assert "test_chooser: Abdominal ultrasound ($140)" in consensus.rationale


def test_stewardship_substitutes_a_cheaper_equivalent() -> None:
    consensus = decide([hyp("test"), result("test_chooser", choice_json("CT chest")),
                        result("stewardship", stewardship_json(substitutions={"CT chest": "Chest X-ray"}))])
    assert (consensus.action, consensus.text) == ("test", "Chest X-ray")
    assert "CT chest -> Chest X-ray" in consensus.rationale


def test_a_contraindicated_test_is_skipped_with_the_blocking_reason() -> None:
    results = [hyp("test"), result("test_chooser", choice_json("CT abdomen with contrast", "Abdominal ultrasound"))]
    consensus = decide(results, facts=KIDNEY_FAILURE)
    assert (consensus.action, consensus.text) == ("test", "Abdominal ultrasound")
    [skipped] = consensus.skipped
    assert skipped.name == "CT abdomen with contrast"
    assert skipped.reason.startswith("blocked: ") and "eGFR 20" in skipped.reason
    # Without facts nothing can be checked, so nothing is blocked.
    assert decide(results, facts=None).text == "CT abdomen with contrast"


def test_an_already_done_test_is_skipped() -> None:
    brief = replace(BRIEF, tests_done=("CBC",))
    consensus = decide([hyp("test"), result("test_chooser", choice_json("Complete blood count", "Lipase"))],
                       brief=brief)
    assert consensus.text == "Lipase"
    assert consensus.skipped == [SkippedTest("Complete blood count", "already done")]


def test_the_challengers_falsifying_test_is_a_candidate_after_the_chosen_tests() -> None:
    consensus = decide([hyp("test"), result("test_chooser", choice_json("PET-CT")),
                        result("stewardship", stewardship_json("PET-CT")),
                        result("challenger", challenge_json(falsifying_test="Lipase"))])
    assert (consensus.action, consensus.text) == ("test", "Lipase")
    assert "challenger: Lipase" in consensus.rationale


def test_an_over_budget_test_is_skipped_and_never_chosen() -> None:
    policy = PanelPolicy.build("budgeted", budget=500)
    ledger = CostLedger()
    ledger.add_visit(1)
    brief = replace(BRIEF, previous_action="ask")
    consensus = decide([hyp("test"), result("test_chooser", choice_json("MRI brain", "Complete blood count"))],
                       brief=brief, policy=policy, ledger=ledger)
    assert (consensus.action, consensus.text) == ("test", "Complete blood count")
    assert consensus.skipped == [SkippedTest("MRI brain", "over budget ($200 left)")]

    only_mri = [hyp("test", question="Any vomiting?"), result("test_chooser", choice_json("MRI brain"))]
    consensus = decide(only_mri, brief=brief, policy=policy, ledger=ledger)
    assert consensus.action == "ask" and consensus.text == "Any vomiting?"  # the round goes on: no new visit
    # After a test a new question round costs a visit the budget cannot pay: the panel diagnoses.
    consensus = decide(only_mri, brief=replace(brief, previous_action="test"), policy=policy, ledger=ledger)
    assert consensus.action == "diagnose" and "cannot pay a visit" in consensus.rationale
    assert ledger.total + VISIT_PRICE > 500


def test_the_questions_variant_never_orders_a_test() -> None:
    policy = PanelPolicy.build("questions")
    consensus = decide([hyp("test", question="Does the pain follow fatty meals?"),
                        result("test_chooser", choice_json("Abdominal ultrasound", "Lipase"))], policy=policy)
    assert (consensus.action, consensus.text) == ("ask", "Does the pain follow fatty meals?")
    assert {s.reason for s in consensus.skipped} == {"questions-only variant"} and len(consensus.skipped) == 2
    assert consensus.priced == []


def test_a_record_question_or_image_request_only_when_offered_and_not_asked() -> None:
    results = [hyp("ask", question="Any jaundice?"),
               result("test_chooser", choice_json("Lipase", record_question="Previous gallstones?",
                                                  image_request="Gallbladder wall thickening?"))]
    assert decide(results).text == "Any jaundice?"
    consensus = decide(results, brief=replace(BRIEF, can_record=True, can_image=True))
    assert (consensus.action, consensus.text) == ("record", "Previous gallstones?")
    consensus = decide(results, brief=replace(BRIEF, can_record=True, can_image=True,
                                              questions_asked=("previous gallstones?",)))
    assert (consensus.action, consensus.text) == ("image", "Gallbladder wall thickening?")
    assert decide(results, brief=replace(BRIEF, can_image=True)).action == "image"


def test_the_fallback_question_when_nothing_else_is_left() -> None:
    consensus = decide([hyp("ask")])
    assert (consensus.action, consensus.text) == ("ask", SAFE_QUESTIONS[0])
    asked = replace(BRIEF, questions_asked=("ANY JAUNDICE?", SAFE_QUESTIONS[0]))
    consensus = decide([hyp("ask", question="Any jaundice?")], brief=asked)
    assert (consensus.action, consensus.text) == ("ask", SAFE_QUESTIONS[1])
    assert "fallback question" in consensus.rationale


def test_a_failed_role_is_listed_and_the_consensus_still_acts() -> None:
    consensus = decide([hyp("test"), result("test_chooser", choice_json("Lipase")),
                        failed("challenger", "model error: RuntimeError: down"), failed("stewardship")])
    assert (consensus.action, consensus.text) == ("test", "Lipase")
    assert consensus.used_roles == ["hypothesis#0", "test_chooser#0"]
    assert consensus.failed_roles == ["challenger#0: model error: RuntimeError: down",
                                      "stewardship#0: unparseable: no JSON object"]
    everything_failed = decide([failed(r) for r in ("hypothesis", "test_chooser", "challenger", "stewardship",
                                                    "checklist")], differential=[])
    assert everything_failed.action == "ask" and len(everything_failed.failed_roles) == 5


def test_moved_by_is_the_union_of_members_known_ids_and_the_consensus_is_json_data() -> None:
    consensus = decide([hyp("ask", moved_by=["F2", "F9"], member=0), hyp("ask", moved_by=["F1", "F2"], member=1)])
    assert consensus.moved_by == ["F2", "F1"]
    data = json.loads(json.dumps(consensus.to_dict()))
    assert data["action"] == "ask" and data["differential"][0] == ["Acute cholecystitis", 0.55]
    assert data["skipped"] == []


def test_a_candidate_that_is_not_a_test_name_is_skipped() -> None:
    consensus = decide([hyp("test"), result("test_chooser", choice_json("Is the pain worse after meals?", "Lipase"))])
    assert consensus.text == "Lipase"
    assert consensus.skipped == [SkippedTest("Is the pain worse after meals?", "unknown test name")]
