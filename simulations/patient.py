"""The simulated patient: answers the doctor's questions from the case's patient script, never naming the disease.

The patient sees its own past exchanges as a chat (doctor questions as user turns, its answers as assistant turns)
that only ever grows at the end, so a serving engine can reuse the prompt prefix from one question to the next.
Small role models ramble and sometimes blurt the diagnosis, so the reply is trimmed and the diagnosis redacted by
deterministic code afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from graphs.state import DialogueEntry
from simulations.cases import Case
from simulations.leaks import redact_diagnosis
from simulations.llm import Usage, generate
from simulations.prompts import load_prompt

PATIENT_MAX_NEW_TOKENS = 80
MAX_SENTENCES = 3
FALLBACK_ANSWER = "I'm not sure."

_ROLE_PREFIX = re.compile(r"^\s*\**\s*(?:patient|me|answer|a)\s*\**\s*:\s*\**\s*", re.IGNORECASE)
# A weak model may go on to write the doctor's next line itself; everything from there on is dropped.
_OTHER_SPEAKER = re.compile(r"\n\s*\**\s*(?:doctor|dr\.?|physician|q|question)\s*\**\s*:", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@cache
def patient_biases() -> dict[str, str]:
    """Bias name -> the sentence added to the patient's instructions (AgentClinic's patient bias set)."""
    lines = load_prompt("patient_biases").splitlines()
    return {name.strip(): text.strip() for name, _, text in (line.partition("=") for line in lines if "=" in line)}


@dataclass(frozen=True)
class PatientReply:
    text: str
    usage: Usage
    redactions: int  # diagnosis mentions removed from this answer
    fallback: bool  # the model's answer was empty after cleaning


class PatientActor:
    """Plays the case's patient. ``bias`` names one of ``patient_biases()``, or None."""

    def __init__(
        self,
        model: BaseChatModel,
        case: Case,
        bias: str | None = None,
        *,
        max_new_tokens: int = PATIENT_MAX_NEW_TOKENS,
    ) -> None:
        if bias is not None and bias not in patient_biases():
            raise ValueError(f"unknown patient bias {bias!r}; choose one of: {', '.join(sorted(patient_biases()))}")
        self.model = model
        self.case = case
        self.bias = bias
        self.max_new_tokens = max_new_tokens
        self.redactions = 0  # over this actor's lifetime: the per-case count a report wants

    def system_prompt(self) -> str:
        bias = f"\n{patient_biases()[self.bias]}" if self.bias else ""
        return load_prompt("patient").format(patient_info=self.case.patient_info, bias=bias)

    def messages(self, question: str, dialogue: Sequence[DialogueEntry] = ()) -> list[BaseMessage]:
        """The chat the model sees: instructions, past question/answer pairs, then this question."""
        entries = list(dialogue)
        # The graph appends the doctor's turn before the environment answers it: do not ask it twice.
        if entries and entries[-1]["role"] == "doctor" and entries[-1]["text"].strip() == question.strip():
            entries.pop()
        chat: list[BaseMessage] = [SystemMessage(self.system_prompt())]
        for entry in entries:
            if entry["role"] == "doctor" and entry.get("action", "ask") in ("ask", None):
                _append(chat, HumanMessage(entry["text"]))
            elif entry["role"] == "patient":
                _append(chat, AIMessage(entry["text"]))
        _append(chat, HumanMessage(question))
        return chat

    async def answer(self, question: str, dialogue: Sequence[DialogueEntry] = ()) -> PatientReply:
        raw, usage = await generate(self.model, self.messages(question, dialogue), max_new_tokens=self.max_new_tokens)
        text = clean_answer(raw)
        text, redacted = redact_diagnosis(self.case, text)
        self.redactions += redacted
        return PatientReply(text=text or FALLBACK_ANSWER, usage=usage, redactions=redacted, fallback=not text)


def clean_answer(text: str, max_sentences: int = MAX_SENTENCES) -> str:
    """The patient's own words only: no role label, no invented doctor turn, at most ``max_sentences``."""
    text = _OTHER_SPEAKER.split("\n" + text.strip(), maxsplit=1)[0].strip()
    text = _ROLE_PREFIX.sub("", text).strip().strip('"').strip()
    sentences = [s for s in _SENTENCE_END.split(" ".join(text.split())) if s]
    return " ".join(sentences[:max_sentences])


def _append(chat: list[BaseMessage], message: BaseMessage) -> None:
    # Chat templates such as Gemma's require strict alternation: fold a repeated role into the previous turn.
    if chat and type(chat[-1]) is type(message) and not isinstance(message, SystemMessage):
        chat[-1] = type(message)(f"{chat[-1].content}\n{message.content}")
    else:
        chat.append(message)
