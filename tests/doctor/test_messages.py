"""The doctor's message list: shape, labels, and the append-only prefix that serving engines cache."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from agents.doctor import Exchange, build_messages
from agents.doctor.messages import repair_messages
from agents.doctor.prompts import final_turn_instruction, turn_note

OBJECTIVE = "Assess and diagnose the patient presenting with double vision and weakness."
HISTORY = [
    Exchange('{"action": "ask", "text": "When did it start?"}', "About a month ago.", "patient"),
    Exchange('{"action": "test", "text": "Edrophonium test"}', "RESULTS: improvement of ptosis.", "measurement"),
    Exchange('{"action": "ask", "text": "Any breathing trouble?"}', "No.", "patient"),
    Exchange('{"action": "ask", "text": "Family history?"}', "The doctor should check thymus.", "clinician"),
]


def _dump(messages: list) -> list[tuple[str, str]]:
    return [(m.type, m.content) for m in messages]


def test_first_turn_is_system_then_objective_with_turn_note() -> None:
    messages = build_messages(OBJECTIVE, [], 1, 6)
    assert [type(m) for m in messages] == [SystemMessage, HumanMessage]
    assert "at most 6 turns" in messages[0].content
    assert messages[1].content == f"{OBJECTIVE}\n\n{turn_note(1, 6)}"
    assert final_turn_instruction() not in messages[1].content


def test_exchanges_replay_replies_verbatim_with_labelled_answers() -> None:
    messages = build_messages(OBJECTIVE, HISTORY, 5, 8)
    assert [type(m) for m in messages] == [SystemMessage, HumanMessage] + [AIMessage, HumanMessage] * 4
    assert [m.content for m in messages[2::2]] == [ex.reply for ex in HISTORY]
    answers = [m.content for m in messages[3::2]]
    assert answers[0] == f"Patient: About a month ago.\n\n{turn_note(2, 8)}"
    assert answers[1].startswith("Test results: RESULTS: improvement of ptosis.")
    assert answers[3].startswith("Clinician: ") and answers[3].endswith(turn_note(5, 8))


def test_message_list_of_turn_k_is_a_prefix_of_turn_k_plus_1() -> None:
    max_turns = len(HISTORY) + 1
    lists = [_dump(build_messages(OBJECTIVE, HISTORY[: k - 1], k, max_turns)) for k in range(1, max_turns + 1)]
    for k in range(1, max_turns - 1):
        earlier, later = lists[k - 1], lists[k]
        assert later[: len(earlier)] == earlier, f"turn {k} is not a prefix of turn {k + 1}"
        assert len(later) == len(earlier) + 2
    # The final turn differs only by the final-turn instruction appended to its last human message.
    before_final, final = lists[-2], lists[-1]
    assert final[: len(before_final)] == before_final
    expected_last = (
        f"Clinician: {HISTORY[-1].answer}\n\n{turn_note(max_turns, max_turns)}\n\n{final_turn_instruction()}"
    )
    assert final[-1] == ("human", expected_last)
    assert sum(final_turn_instruction() in content for _, content in final) == 1


def test_same_inputs_give_byte_identical_messages() -> None:
    assert _dump(build_messages(OBJECTIVE, HISTORY, 5, 8)) == _dump(build_messages(OBJECTIVE, list(HISTORY), 5, 8))


def test_repair_messages_extend_without_touching_the_turn() -> None:
    messages = build_messages(OBJECTIVE, HISTORY[:1], 2, 8)
    repaired = repair_messages(messages, "", "empty reply")
    assert _dump(repaired[: len(messages)]) == _dump(messages)
    assert isinstance(repaired[-2], AIMessage) and repaired[-2].content == "(empty reply)"
    assert isinstance(repaired[-1], HumanMessage) and "empty reply" in repaired[-1].content
    assert '"action"' in repaired[-1].content
    assert len(messages) == 4  # the original list is not mutated


def test_final_repair_restates_the_answers_without_the_replies() -> None:
    from agents.doctor.messages import final_repair_messages

    messages = final_repair_messages(OBJECTIVE, HISTORY, 8)
    assert [type(m) for m in messages] == [SystemMessage, HumanMessage]
    content = messages[1].content
    assert content.startswith(OBJECTIVE)
    assert "- Test results: RESULTS: improvement of ptosis." in content and "- Clinician: " in content
    assert all(ex.reply not in content for ex in HISTORY)
    assert "What you learned" not in final_repair_messages(OBJECTIVE, [], 1)[1].content


def test_prompt_examples_are_valid_decisions() -> None:
    """Edits to the prompt texts must keep their JSON examples usable: small models copy them literally."""
    from agents.doctor import DoctorDecision, parse_decision
    from agents.doctor.prompts import load_prompt, repair_prompt, system_prompt

    example = system_prompt(8).rsplit("Example reply:", 1)[1].strip()
    DoctorDecision.model_validate_json(example)
    assert parse_decision(example).method == "json"
    assert "{max_turns}" not in system_prompt(8) and "at most 8 turns" in system_prompt(8)
    assert "{reason}" not in repair_prompt("x") and "(x)" in repair_prompt("x")
    for name in ("system", "turn", "final_turn", "repair", "final_repair"):
        assert load_prompt(name) == load_prompt(name).strip()
