"""Tolerant parsing of a doctor reply into a ``DoctorDecision``.

MedGemma has no native tool calling, and small models drift out of any format, so the reply is read the way
Google's EHR agent reads it: find a JSON object anywhere, forgive the cheap mistakes, and fall back to AgentClinic's
tags and finally to a plain question. Order of attempts, first usable wins:

1. complete JSON objects (fenced or bare, prose around them); the last usable one, outer object before nested ones;
2. a JSON object cut off by the token limit: its complete ``"key": "value"`` pairs (action and text come first);
3. AgentClinic tags: ``DIAGNOSIS READY: <dx>``, then ``REQUEST TEST: <name>``, then ``REQUEST IMAGES``;
4. a line that is a question (ends in ``?``) is asked to the patient;
5. a diagnosis stated in prose ("the most likely diagnosis is X") is taken as the diagnosis.

Everything is a pure function of the reply text; nothing raises on bad input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from agents.doctor.decision import Action, DoctorDecision
from agents.json_objects import load_object, salvage_object, scan_objects

ParseMethod = Literal["json", "json_salvage", "tag", "question", "prose_diagnosis"]

# Replies longer than this are runaway generations: only their start is worth reading.
_MAX_SCAN_CHARS = 20_000

_THINK_BLOCK = re.compile(r"(?:<unused94>|<think>)(.*?)(?:<unused95>|</think>|\Z)", re.DOTALL)
_THINK_CLOSERS = ("<unused95>", "</think>")


@dataclass(frozen=True)
class ParseResult:
    """A parsed decision, or None with a short reason why the reply could not be used."""

    decision: DoctorDecision | None
    reason: str
    method: ParseMethod | None = None

    @property
    def ok(self) -> bool:
        return self.decision is not None


def split_thinking(reply: str) -> tuple[str, str | None]:
    """Split a reply into (answer, thinking). Backends strip MedGemma's thinking; this is the defensive second pass.

    Handles ``<unused94>thought ...<unused95>answer``, an unclosed block (truncated thinking: no answer), and a lone
    closer whose opener was swallowed as a special token.
    """
    thoughts: list[str] = []

    def grab(match: re.Match[str]) -> str:
        thoughts.append(match.group(1))
        return ""

    answer = _THINK_BLOCK.sub(grab, reply)
    for closer in _THINK_CLOSERS:
        if closer in answer:
            before, _, answer = answer.rpartition(closer)
            thoughts.append(before)
    cleaned = [re.sub(r"^\s*thought\b", "", t).strip() for t in thoughts]
    thinking = "\n\n".join(t for t in cleaned if t)
    return answer.strip(), thinking or None


# --- synonyms -------------------------------------------------------------------------------------------------------

_ACTION_KEYS = ("action", "next_action", "action_type", "type", "decision", "step", "next_step", "intent")
_ACTION_VALUES: dict[str, Action] = {
    **dict.fromkeys(
        (
            "ask",
            "question",
            "ask_question",
            "ask_patient",
            "ask_the_patient",
            "interview",
            "history",
            "query",
            "follow_up",
            "clarify",
        ),
        "ask",
    ),
    **dict.fromkeys(
        (
            "test",
            "tests",
            "order_test",
            "order_tests",
            "request_test",
            "request_tests",
            "order",
            "exam",
            "examination",
            "physical_exam",
            "physical_examination",
            "investigation",
            "investigate",
            "lab",
            "labs",
            "imaging",
            "measurement",
        ),
        "test",
    ),
    **dict.fromkeys(
        (
            "record",
            "records",
            "chart",
            "ehr",
            "fhir",
            "lookup",
            "look_up",
            "record_lookup",
            "check_record",
            "check_chart",
            "review_record",
            "review_chart",
            "query_record",
        ),
        "record",
    ),
    # "imaging" stays a test above: ordering a scan is a test; reading an image the consultation holds is this.
    **dict.fromkeys(
        (
            "image",
            "images",
            "read_image",
            "image_read",
            "view_image",
            "look_at_image",
            "review_image",
            "request_image",
            "request_images",
            "examine_image",
        ),
        "image",
    ),
    **dict.fromkeys(
        (
            "diagnose",
            "diagnosis",
            "final_diagnosis",
            "diagnosis_ready",
            "give_diagnosis",
            "make_diagnosis",
            "final",
            "final_answer",
            "conclude",
        ),
        "diagnose",
    ),
}
_TEXT_KEYS_BY_ACTION: dict[Action, tuple[str, ...]] = {
    "ask": ("question", "ask", "question_to_patient"),
    "test": ("test", "test_name", "tests", "order", "exam", "examination", "request", "test_to_order"),
    "record": ("record_question", "lookup", "record", "chart", "query"),
    "image": ("image_question", "look_for", "image_request"),
    "diagnose": ("diagnosis", "final_diagnosis", "dx", "final_answer"),
}
_GENERIC_TEXT_KEYS = ("text", "message", "content", "value", "query", "detail", "details")
_DIFFERENTIAL_KEYS = (
    "differential",
    "differential_diagnosis",
    "differential_diagnoses",
    "differentials",
    "ddx",
    "diagnoses",
    "possible_diagnoses",
)
_RATIONALE_KEYS = ("rationale", "reasoning", "reason", "explanation", "justification", "why")
_ENTRY_DIAGNOSIS_KEYS = ("diagnosis", "name", "condition", "dx", "disease", "label")
_ENTRY_PROBABILITY_KEYS = ("probability", "prob", "p", "likelihood", "confidence", "score", "chance")


def _norm_key(key: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(key).lower()).strip("_")


def _get(obj: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    """The value of the first key (after normalisation) from ``keys`` present in ``obj``."""
    normalised = {_norm_key(k): v for k, v in obj.items()}
    for key in keys:
        if key in normalised:
            return normalised[key]
    return None


def _action_of(value: Any) -> Action | None:
    if not isinstance(value, str):
        return None
    key = _norm_key(value)
    if key in _ACTION_VALUES:
        return _ACTION_VALUES[key]
    # Free phrasing ("order a test", "make final diagnosis"): the verb's stem decides.
    if "diagnos" in key:
        return "diagnose"
    if "image" in key:  # before "exam": "examine the image" reads an image; "imaging" does not match
        return "image"
    if "test" in key or "exam" in key:
        return "test"
    if "record" in key or "chart" in key:
        return "record"
    if key.startswith("ask") or "question" in key:
        return "ask"
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ", ".join(v.strip() for v in value if v.strip())
    return ""


# --- degenerate text ------------------------------------------------------------------------------------------------

_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|i apologi[sz]e|i can'?t|i cannot|i am unable|i'?m unable|i'?m not able|"
    r"as an ai|as a language model)",
    re.IGNORECASE,
)
# A short chunk repeated six times or more ("!!!!!!", "no no no no no no "); starts on a non-space so that JSON
# indentation does not count.
_REPEATED_CHUNK = re.compile(r"(\S.{0,19}?)\1{5,}", re.DOTALL)


def degenerate_reason(text: str, *, repetition: bool = True) -> str | None:
    """Why ``text`` is not usable as a question, test or diagnosis, or None when it looks like language.

    ``repetition=False`` checks only for emptiness: a whole reply may end in a loop after a usable object.
    """
    stripped = text.strip()
    if not stripped:
        return "empty reply"
    words = re.findall(r"\w+", stripped.lower())
    if not words:
        return "no words in reply (punctuation only)"
    if not repetition:
        return None
    if len(words) >= 6 and len(set(words)) / len(words) < 0.3:
        return "repetitive reply"
    if _REPEATED_CHUNK.search(stripped):
        return "repetitive reply"
    return None


# --- JSON objects to decisions ---------------------------------------------------------------------------------------


def _entries(value: Any) -> Any:
    """Map differential items' synonym keys onto ``diagnosis`` / ``probability``; other shapes pass through."""
    if not isinstance(value, list):
        return value
    out: list[Any] = []
    for item in value:
        if isinstance(item, Mapping):
            out.append(
                {
                    "diagnosis": _get(item, _ENTRY_DIAGNOSIS_KEYS),
                    "probability": _get(item, _ENTRY_PROBABILITY_KEYS) or 0.0,
                }
            )
        else:
            out.append(item)
    return out


def decision_from_mapping(obj: Mapping[str, Any], *, infer_action: bool = True) -> tuple[DoctorDecision | None, str]:
    """Build a decision from one JSON object with synonym keys and values; (None, reason) when unusable.

    ``infer_action=False`` demands an explicit action key: used for objects found inside a truncated one, where a
    differential item ``{"diagnosis": ...}`` must not read as a diagnosis.
    """
    raw_action = _get(obj, _ACTION_KEYS)
    if isinstance(raw_action, Mapping):
        # {"action": {"type": "ask", "text": "..."}}: the action object carries the fields.
        obj = {**obj, **raw_action}
        raw_action = _get(raw_action, ("type", "name", "action", "kind"))
    action = _action_of(raw_action)
    if action is None and not infer_action:
        return None, "JSON without a usable action"
    if action is None:
        # No usable action key: infer it when exactly one action's own key is present ({"question": "..."}).
        present = [a for a, keys in _TEXT_KEYS_BY_ACTION.items() if _as_text(_get(obj, keys))]
        if len(present) != 1:
            return None, "JSON without a usable action"
        action = present[0]
    differential = _entries(_get(obj, _DIFFERENTIAL_KEYS))
    text = _as_text(_get(obj, ("text",))) or _as_text(_get(obj, _TEXT_KEYS_BY_ACTION[action]))
    text = text or _as_text(_get(obj, _GENERIC_TEXT_KEYS))
    rationale = _as_text(_get(obj, _RATIONALE_KEYS))
    try:
        decision = DoctorDecision(action=action, text=text or "-", differential=differential or [], rationale=rationale)
    except ValidationError:
        return None, "JSON with invalid fields"
    if not text:
        if action == "diagnose" and decision.differential:
            # A diagnosis given only as the differential: its top item is the answer.
            return decision.model_copy(update={"text": decision.differential[0].diagnosis}), "json"
        return None, "JSON without usable text"
    problem = degenerate_reason(text)
    if problem is not None:
        return None, f"JSON text unusable: {problem}"
    return decision, "json"


def _nested(obj: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The object, then dicts nested under its keys ({"decision": {...}}), never differential items."""
    yield obj
    for key, value in obj.items():
        if isinstance(value, Mapping) and _norm_key(key) not in _DIFFERENTIAL_KEYS:
            yield from _nested(value)


def _from_json(text: str) -> tuple[ParseResult | None, str | None, list[tuple[int, int]]]:
    """(result, why JSON failed, spans of JSON objects) for the JSON in ``text``."""
    objects = list(scan_objects(text))
    # An unclosed object runs to the end of the text, so every object starting after it lies inside it.
    unclosed_at = min((s for s, _, complete in objects if not complete), default=len(text))
    failure: str | None = None
    # Last complete object first: a model that echoes the prompt's example and then answers means the answer.
    for start, end, complete in reversed(objects):
        if not complete:
            continue
        loaded = load_object(text[start:end])
        if loaded is None:
            failure = failure or "malformed JSON"
            continue
        for candidate in _nested(loaded):
            decision, why = decision_from_mapping(candidate, infer_action=start < unclosed_at)
            if decision is not None:
                return ParseResult(decision, "parsed JSON object", "json"), None, []
            failure = failure or why
    for start, end, complete in objects:
        if complete:
            continue
        decision, why = decision_from_mapping(salvage_object(text[start:end]))
        if decision is not None:
            return ParseResult(decision, "salvaged truncated JSON", "json_salvage"), None, []
        failure = failure or f"truncated JSON: {why}"
    return None, failure, [(s, e) for s, e, _ in objects]


# --- tags and plain questions ---------------------------------------------------------------------------------------

_DIAGNOSIS_TAG = re.compile(r"DIAGNOSIS\s+READY\s*[:\-]\s*(.*)", re.IGNORECASE)
_TEST_TAG = re.compile(r"REQUEST\s+TEST\s*[:\-]\s*(.*)", re.IGNORECASE)
# Upstream's image tag takes no argument: whatever follows on the line is what to look for, if anything. Matched in
# capitals only, since "could you request images?" is a question and not the tag.
_IMAGE_TAG = re.compile(r"REQUEST\s+IMAGES?\b\s*[:\-]?\s*(.*)")
IMAGE_TAG_TEXT = "What does the image show?"
_LINE_LABEL = re.compile(
    r"^\s*(?:[-*>#]+\s*)?(?:\*\*)?(?:doctor|dr\.?|physician|q|question)(?:\*\*)?\s*:\s*(?:\*\*)?", re.IGNORECASE
)
_OTHER_SPEAKER = re.compile(r"^\s*(?:\*\*)?(?:patient|measurement|results?|a|answer)(?:\*\*)?\s*:", re.IGNORECASE)


def _clean_tag_value(value: str) -> str:
    return value.strip().strip("*_`\"'").strip().rstrip(".").strip()


def _from_tags(prose: str) -> ParseResult | None:
    for pattern, action, label in (
        (_DIAGNOSIS_TAG, "diagnose", "DIAGNOSIS READY"),
        (_TEST_TAG, "test", "REQUEST TEST"),
    ):
        for match in pattern.finditer(prose):
            value = _clean_tag_value(match.group(1))
            if value and degenerate_reason(value) is None:
                decision = DoctorDecision(action=action, text=value, differential=[], rationale="")
                return ParseResult(decision, f"AgentClinic tag {label}", "tag")
    match = _IMAGE_TAG.search(prose)
    if match is not None:
        value = _clean_tag_value(match.group(1))
        text = value if value and degenerate_reason(value) is None else IMAGE_TAG_TEXT
        decision = DoctorDecision(action="image", text=text, differential=[], rationale="")
        return ParseResult(decision, "AgentClinic tag REQUEST IMAGES", "tag")
    return None


def _from_question(prose: str) -> ParseResult | None:
    for line in prose.splitlines():
        if _OTHER_SPEAKER.match(line):
            # Small models role-play both sides; a question the "patient" asks is not the doctor's.
            continue
        line = _LINE_LABEL.sub("", line).strip().strip('*_`"').strip()
        if line.endswith("?") and len(line.split()) >= 2 and degenerate_reason(line) is None:
            decision = DoctorDecision(action="ask", text=line, differential=[], rationale="")
            return ParseResult(decision, "plain question", "question")
    return None


# "The most likely diagnosis is X." / "Final diagnosis: X": how small models answer when they ignore the format.
_DIAGNOSIS_PHRASE = re.compile(
    r"\bdiagnosis\s*(?:is|would be|:|=)\s*(?:likely\s+|probably\s+)?([^\n.;!?]+)", re.IGNORECASE
)
# Longer than this is a sentence about the case, not a disease name.
_MAX_DIAGNOSIS_WORDS = 12
# "The diagnosis is unclear / not yet certain / based on ...": a hedge, not a diagnosis.
_HEDGE = re.compile(
    r"^(?:unclear|uncertain|unknown|not|still|yet|difficult|hard|pending|undetermined|to be|being|based|"
    r"dependent|depends|made|confirmed|established|important|likely to)\b",
    re.IGNORECASE,
)


def _from_diagnosis_phrase(prose: str) -> ParseResult | None:
    for match in _DIAGNOSIS_PHRASE.finditer(prose):
        value = _clean_tag_value(match.group(1))
        value = re.sub(r"^(?:a|an|the)\s+", "", value, flags=re.IGNORECASE)
        if (
            value
            and len(value.split()) <= _MAX_DIAGNOSIS_WORDS
            and not _HEDGE.match(value)
            and degenerate_reason(value) is None
        ):
            decision = DoctorDecision(action="diagnose", text=value, differential=[], rationale="")
            return ParseResult(decision, "diagnosis stated in prose", "prose_diagnosis")
    return None


def parse_decision(reply: str) -> ParseResult:
    """Read a doctor reply into a decision; never raises. See the module docstring for the order of attempts."""
    if not isinstance(reply, str):
        return ParseResult(None, "reply is not text")
    answer, _ = split_thinking(reply[:_MAX_SCAN_CHARS])
    problem = degenerate_reason(answer, repetition=False)
    if problem is not None:
        return ParseResult(None, problem)
    result, json_failure, spans = _from_json(answer)
    if result is not None:
        return result
    prose = answer
    for start, end in reversed(spans):
        prose = prose[:start] + "\n" + prose[end:]
    result = _from_tags(prose)
    if result is None and _REFUSAL.match(prose):
        return ParseResult(None, "refusal")
    result = result or _from_question(prose) or _from_diagnosis_phrase(prose)
    if result is not None:
        return result
    return ParseResult(None, json_failure or degenerate_reason(prose) or "no JSON decision, tag or question found")
