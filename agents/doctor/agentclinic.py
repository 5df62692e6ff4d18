"""The ``agentclinic`` protocol's doctor: upstream AgentClinic's prompt and tag protocol, reproduced on purpose.

Per turn the model sees a system prompt (who it is, "you may ask N questions, you have asked k", the tags
``REQUEST TEST: [test]`` and ``DIAGNOSIS READY: [diagnosis here]``, an optional bias sentence, the objective) and
ONE user message that flattens the whole conversation into a growing string, exactly as upstream builds it:

    "\\n<history> " + HIST + "\\n <latest> " + LAST + "<continue>\\nDoctor: "

HIST holds, for each earlier call i, the observation that call was given (empty for the first) + "\\n\\n" + the
doctor's reply + "\\n\\n"; LAST is the observation answering the previous call. On the final turn the last-turn
nudge is appended to LAST. This is upstream's flaw 4 (quadratic prompt tokens, no prefix-cache reuse), kept here
deliberately so that upstream numbers can be reproduced; the ``clinicflow`` protocol (``agents.doctor.doctor``)
keeps an append-only message list instead. The framing words are ours; the structure and the tags are upstream's.

Routing is upstream's, on the whitespace-collapsed reply: "DIAGNOSIS READY" anywhere -> diagnose (checked first),
else "REQUEST TEST" anywhere -> test, else the whole reply goes to the patient. The tags are matched
case-sensitively, as upstream does. A doctor that has not diagnosed by the last turn is not forced to: the turn
ends with ``NO_DIAGNOSIS`` (``forced=True``), which scoring counts as no diagnosis. Model errors propagate
(upstream has no fallback; the benchmark runner records the attempt as an error).

Images (NEJM): upstream's two settings. With images on request the system prompt gains upstream's offer of
"REQUEST IMAGES" and a reply carrying that tag (and neither of the others) becomes the ``image`` action; upstream
sends that reply to the patient and attaches the image to the next call, ours has the image read and hands the
doctor the read as the next observation (labelled as an image read). With the image at start, upstream attaches
the image to every call; ours appends the read made at intake to the objective, fenced as data. Either way the
doctor gets the image reader's findings rather than the pixels, because the reasoning model is text-only
(MedGemma 27B text).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from time import perf_counter
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from agents.doctor.decision import DoctorDecision
from agents.doctor.doctor import DoctorTurn, read_doctor_reply
from agents.doctor.fallbacks import PriorDifferential
from agents.doctor.messages import Exchange, ImageBrief, answer_label
from agents.doctor.prompts import image_block, load_prompt

DIAGNOSIS_TAG = "DIAGNOSIS READY"
TEST_TAG = "REQUEST TEST"
IMAGE_TAG = "REQUEST IMAGES"
# Upstream's offer of images on request, in our words, appended to the tag sentences of the system prompt.
IMAGE_OFFER = ' You may also ask to see medical images related to the disease by writing "REQUEST IMAGES".'
# The final diagnosis recorded when the doctor never wrote DIAGNOSIS READY; scored as no diagnosis.
NO_DIAGNOSIS = "No diagnosis given"
# Sent on in place of an empty reply (DoctorDecision needs text); the turn is marked degraded.
EMPTY_REPLY = "..."
AGENTCLINIC_MAX_NEW_TOKENS = 200  # upstream's max_tokens

# The user message's framing (our words, upstream's structure); appended to the observation on the final turn.
HISTORY_OPEN = "\nThe dialogue so far: "
LATEST_OPEN = "\n The patient's latest reply: "
CONTINUE = "Now carry on with the dialogue.\nDoctor: "
FINAL_NUDGE = "This is the last question. Please give your diagnosis now.\n"

Route = Literal["ask", "test", "image", "diagnose"]
_WHITESPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"[.?!](?:\s|$)")


@cache
def _load_biases() -> tuple[tuple[str, str], ...]:
    lines = load_prompt("agentclinic_biases").splitlines()
    return tuple((name.strip(), text.strip()) for name, _, text in (line.partition("=") for line in lines if "=" in line))


def agentclinic_doctor_biases() -> dict[str, str]:
    """Bias name -> the sentence inserted into the doctor's system prompt (upstream's 12 doctor biases)."""
    return dict(_load_biases())


def bias_sentence(bias: str | None, biases: dict[str, str], role: str) -> str:
    """The sentence for ``bias`` ("" for None); an unknown name is refused with the valid ones listed."""
    if bias is None:
        return ""
    if bias not in biases:
        raise ValueError(f"unknown {role} bias {bias!r}; choose one of: {', '.join(sorted(biases))}")
    return biases[bias]


def collapse(text: str) -> str:
    """Every run of whitespace as one space, as upstream does to every model answer."""
    return _WHITESPACE.sub(" ", text).strip()


def has_diagnosis_tag(text: str) -> bool:
    """Whether ``text`` carries upstream's ``DIAGNOSIS READY`` tag (case-sensitive, anywhere, as upstream)."""
    return DIAGNOSIS_TAG in text


def route(reply: str, *, images: bool = False) -> Route:
    """Upstream's routing of a doctor reply: the diagnosis tag wins over the test tag; no tag asks the patient.

    ``images``: images are offered on request, so ``REQUEST IMAGES`` (after the other two tags) reads an image.
    """
    if has_diagnosis_tag(reply):
        return "diagnose"
    if TEST_TAG in reply:
        return "test"
    if images and IMAGE_TAG in reply:
        return "image"
    return "ask"


def diagnosis_text(reply: str) -> str:
    """The diagnosis after ``DIAGNOSIS READY:`` (brackets and a final period removed); the whole reply if empty."""
    _, _, after = reply.partition(DIAGNOSIS_TAG)
    text = after.lstrip(" :*").strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    text = text.strip().rstrip(".*").strip()
    return text or reply.strip()


def requested_test(text: str) -> str:
    """The test named after ``REQUEST TEST:`` up to the end of its sentence, or the whole text without the tag."""
    _, tag, after = text.partition(TEST_TAG)
    if not tag:
        return text.strip()
    name = after.lstrip(" :*").strip()
    end = _SENTENCE_END.search(name)
    name = (name[: end.start()] if end else name).strip().strip("[]*\"'`").strip()
    return name or text.strip()


def agentclinic_objective(objective: str, images: ImageBrief | None = None) -> str:
    """The objective as the doctor is told it: with the read made at intake appended, fenced as data, where upstream
    would have attached the image (the "image at start" setting)."""
    if images is None or not images.intake_read:
        return objective.strip()
    return f"{objective.strip()}\n\n{image_block(images.available, images.intake_read)}"


def agentclinic_system_prompt(
    objective: str, turn: int, max_turns: int, bias: str | None = None, *, images: ImageBrief | None = None
) -> str:
    """Upstream's doctor system prompt in our words: N = ``max_turns``, k = calls already made (``turn - 1``);
    upstream's offer of ``REQUEST IMAGES`` when ``images.can_request``."""
    sentence = bias_sentence(bias, agentclinic_doctor_biases(), "doctor")
    offer = IMAGE_OFFER if images is not None and images.can_request else ""
    return load_prompt("agentclinic_system").format(
        max_turns=max_turns, asked=turn - 1, images=offer, bias=f"\n{sentence}" if sentence else "",
        objective=agentclinic_objective(objective, images),
    )


def _observation(exchange: Exchange) -> str:
    """An answer as the doctor sees it: upstream labels none (results start with "RESULTS:"); an image read is
    labelled as data, so that the reader's words are not taken for the patient's."""
    if exchange.answered_by == "imaging":
        return f"{answer_label('imaging')}: {exchange.answer}"
    return exchange.answer


def agentclinic_doctor_messages(
    objective: str,
    exchanges: Sequence[Exchange],
    turn: int,
    max_turns: int,
    bias: str | None = None,
    *,
    images: ImageBrief | None = None,
) -> list[BaseMessage]:
    """[system, one flattened user string] for doctor call ``turn`` (1-based); pure."""
    # The observation handed to call i: nothing for the first call, then the answer to the call before it.
    observations = [""] + [_observation(ex) for ex in exchanges]
    history = "".join(f"{observations[i]}\n\n{ex.reply}\n\n" for i, ex in enumerate(exchanges))
    latest = observations[len(exchanges)]
    if turn >= max_turns:
        latest += FINAL_NUDGE
    return [
        SystemMessage(agentclinic_system_prompt(objective, turn, max_turns, bias, images=images)),
        HumanMessage(f"{HISTORY_OPEN}{history}{LATEST_OPEN}{latest}{CONTINUE}"),
    ]


class AgentClinicDoctor:
    """The doctor under upstream's rules; ``decide`` has ``Doctor.decide``'s signature so the graph takes either."""

    def __init__(
        self, model: BaseChatModel, *, bias: str | None = None, max_new_tokens: int = AGENTCLINIC_MAX_NEW_TOKENS
    ) -> None:
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        bias_sentence(bias, agentclinic_doctor_biases(), "doctor")  # refuse an unknown bias now, not mid-run
        self.model = model
        self.bias = bias
        self.max_new_tokens = max_new_tokens

    async def decide(
        self,
        objective: str,
        exchanges: Sequence[Exchange],
        turn: int,
        max_turns: int,
        *,
        prior_differential: PriorDifferential | None = None,
        record: str | None = None,
        images: ImageBrief | None = None,
    ) -> DoctorTurn:
        """One model call, routed by tag. ``prior_differential`` and ``record`` are accepted for the graph's sake
        and ignored: upstream keeps no differential and has no health record. ``images``: with ``can_request`` the
        prompt offers ``REQUEST IMAGES`` and the tag reads an image; an ``intake_read`` joins the objective. Ours
        sends the image reader's findings, not the image, because the reasoning model is text-only."""
        if turn < 1 or max_turns < 1:
            raise ValueError(f"turn ({turn}) and max_turns ({max_turns}) must be at least 1")
        started = perf_counter()
        messages = agentclinic_doctor_messages(objective, exchanges, turn, max_turns, self.bias, images=images)
        answer = read_doctor_reply(await self.model.ainvoke(messages, max_new_tokens=self.max_new_tokens))
        reply = collapse(answer.text)
        action = route(reply, images=images is not None and images.can_request)
        forced = turn >= max_turns and action != "diagnose"
        if action == "diagnose":
            decision = DoctorDecision(action="diagnose", text=diagnosis_text(reply), rationale="DIAGNOSIS READY tag")
            reason = "diagnosis tag"
        elif forced:
            decision = DoctorDecision(action="diagnose", text=NO_DIAGNOSIS, rationale="no DIAGNOSIS READY in time")
            reason = "no diagnosis by the final turn"
        else:
            rationale, reason = {
                "test": ("REQUEST TEST tag", "test tag"),
                "image": ("REQUEST IMAGES tag", "image tag"),
            }.get(action, ("no tag: spoken to the patient", "empty reply" if not reply else "no tag"))
            # The whole reply is what the image is read for, as a test order's whole reply goes to the measurement.
            decision = DoctorDecision(action=action, text=reply or EMPTY_REPLY, rationale=rationale)
        return DoctorTurn(
            decision=decision,
            reply=reply or EMPTY_REPLY,
            thinking=answer.thinking,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            seconds=perf_counter() - started,
            calls=1,
            model=answer.model,
            degraded=not reply,
            forced=forced,
            error=None,
            parse_reason=reason,
        )
