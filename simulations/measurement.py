"""The measurement actor: answers test orders from the case's listed findings.

A listed test is found by deterministic name matching (``simulations.findings``) and its recorded text returned as
is, with no model call. What happens to an unlisted test is the protocol choice that matters:

- ``strict`` (ours): "not available", so asking for everything is not rewarded with invented normal results;
- ``agentclinic`` (upstream): a model is shown the findings and answers, told to say NORMAL READINGS for anything
  not listed; an unusable answer falls back to exactly that.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from graphs.state import DialogueEntry
from simulations.cases import Case
from simulations.findings import NamedTest, flatten_findings, match_test, name_tokens, render_value
from simulations.llm import Usage, generate
from simulations.prompts import load_prompt
from simulations.textnorm import fold

MeasurementMode = Literal["strict", "agentclinic"]
MEASUREMENT_MAX_NEW_TOKENS = 120
NORMAL_READINGS = "NORMAL READINGS"
MAX_RESULT_CHARS = 400

_ORDER_PREFIX = re.compile(r"^\s*(?:request\s+tests?|tests?|order)\s*:\s*", re.IGNORECASE)
_PART_SPLIT = re.compile(r"\s*(?:[,;\n]|\band\b|&|\+)\s*", re.IGNORECASE)
_LEADING_FILLER = re.compile(r"^(?:(?:a|an|the|some|also|please|repeat)\s+)+", re.IGNORECASE)
_RESULTS_PREFIX = re.compile(r"^\s*(?:\*\*)?results?(?:\*\*)?\s*:\s*(?:\*\*)?\s*", re.IGNORECASE)
_OTHER_SPEAKER = re.compile(r"\n\s*(?:doctor|patient|dr\.?)\s*:", re.IGNORECASE)
_ECHO = re.compile(r"^(?:tests?|tests? requested|requested tests?)\s*:[^\n]*$", re.IGNORECASE)


@dataclass(frozen=True)
class TestPart:
    """One test named in an order, and how it was answered."""

    request: str
    path: str | None  # the listed test it matched
    method: Literal["listed", "not_available", "model", "fallback"]


@dataclass(frozen=True)
class TestReply:
    text: str  # "RESULTS: ..."
    parts: list[TestPart]
    available: bool  # False when strict mode had to answer "not available" for any part of the order
    usage: Usage

    @property
    def names(self) -> list[str]:
        """Matched test paths, or the names as requested where nothing matched."""
        return [p.path or p.request for p in self.parts]


class MeasurementActor:
    """Answers test orders for one case. ``model`` is only called in ``agentclinic`` mode, for unlisted tests."""

    def __init__(
        self,
        model: BaseChatModel | None,
        case: Case,
        mode: MeasurementMode = "strict",
        *,
        max_new_tokens: int = MEASUREMENT_MAX_NEW_TOKENS,
    ) -> None:
        if mode not in ("strict", "agentclinic"):
            raise ValueError(f"unknown measurement mode {mode!r}; choose 'strict' or 'agentclinic'")
        if mode == "agentclinic" and model is None:
            raise ValueError("agentclinic mode needs a chat model to answer unlisted tests")
        self.model = model
        self.case = case
        self.mode: MeasurementMode = mode
        self.max_new_tokens = max_new_tokens
        self.tests: list[NamedTest] = flatten_findings(case.findings)

    def match(self, request: str) -> list[tuple[str, NamedTest | None]]:
        """Each test named in an order with the listed test it matches (None when unlisted), order kept."""
        order = clean_order(request)
        whole = match_test(order, self.tests)
        parts = [_LEADING_FILLER.sub("", p).strip() for p in _PART_SPLIT.split(order) if name_tokens(p)]
        # Read the order as one name when one listed test explains all of it ("CT of thorax and abdomen").
        if whole is not None and (len(parts) <= 1 or whole.request_coverage >= 0.99):
            return [(order, whole.test)]
        if len(parts) <= 1:
            return [(order, None)] if order else []
        matched: list[tuple[str, NamedTest | None]] = []
        seen: set[str] = set()
        for part in parts:
            found = match_test(part, self.tests)
            if found is not None and found.test.path in seen:
                continue
            if found is not None:
                seen.add(found.test.path)
            matched.append((part, found.test if found else None))
        return matched

    async def answer(self, request: str, dialogue: Sequence[DialogueEntry] = ()) -> TestReply:
        """Answer one order; ``dialogue`` is accepted for the clinic's interface and not needed here."""
        pairs = self.match(request)
        if not pairs:
            return TestReply("RESULTS: no test was named", [], available=False, usage=Usage())
        sections: list[str] = []
        parts: list[TestPart] = []
        unlisted = [name for name, test in pairs if test is None]
        model_text: str | None = None
        usage = Usage()
        if unlisted and self.mode == "agentclinic":
            model_text, usage = await self._answer_unlisted(unlisted)
        for name, test in pairs:
            if test is not None:
                sections.append(test.render())
                parts.append(TestPart(name, test.path, "listed"))
            elif self.mode == "strict":
                sections.append(f"{name}: not available")
                parts.append(TestPart(name, None, "not_available"))
            else:
                parts.append(TestPart(name, None, "model" if model_text else "fallback"))
        if unlisted and self.mode == "agentclinic":
            sections.append(model_text or NORMAL_READINGS)
        available = all(p.method != "not_available" for p in parts)
        return TestReply("RESULTS: " + "\n".join(sections), parts, available=available, usage=usage)

    async def _answer_unlisted(self, names: list[str]) -> tuple[str | None, Usage]:
        assert self.model is not None  # guaranteed by __init__ for agentclinic mode
        system = load_prompt("measurement").format(findings=findings_text(self.case))
        messages = [SystemMessage(system), HumanMessage(f"Test requested: {', '.join(names)}")]
        raw, usage = await generate(self.model, messages, max_new_tokens=self.max_new_tokens)
        return clean_result(raw), usage


def clean_order(request: str) -> str:
    """The test names in a doctor's order, without an AgentClinic tag or trailing punctuation."""
    order = _ORDER_PREFIX.sub("", request).strip().strip("\"'`*").rstrip(".").strip()
    return _LEADING_FILLER.sub("", order).strip()


def clean_result(text: str) -> str | None:
    """A model's result without the RESULTS tag, an echo of the order or an invented next speaker, cut to its first
    paragraph (small models go on to explain the test); None when nothing usable is left."""
    text = _OTHER_SPEAKER.split("\n" + text.strip(), maxsplit=1)[0].strip()
    text = _RESULTS_PREFIX.sub("", text).strip()
    paragraphs = [p.strip().strip("*").strip() for p in re.split(r"\n\s*\n", text)]
    paragraphs = [p for p in paragraphs if p and not _ECHO.match(p)]
    if not paragraphs:
        return None
    text = paragraphs[0]
    if fold(text).startswith("normal reading"):
        return NORMAL_READINGS
    return text[:MAX_RESULT_CHARS]


def findings_text(case: Case) -> str:
    """The findings as compact lines for a prompt: one line per top-level section."""
    if isinstance(case.findings, str):
        return case.findings
    return "\n".join(f"{key.replace('_', ' ')}: {render_value(value)}" for key, value in case.findings.items())
