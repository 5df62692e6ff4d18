"""The navigator's prompt texts, kept as files in ``prompts/`` beside this module, and the message lists built
from them.

Placeholders are ``{name}``, replaced by name only, so the JSON examples need no brace escaping. Record-derived
text (the manifest, the fact lines) only ever enters a prompt inside the ``<record_data>`` block.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from agents.navigator.answer import DATA_CLOSE, DATA_OPEN, Fact, data_block
from agents.navigator.plan import MAX_FETCHES, render_plan_example
from agents.prompt_files import read_prompt, render

__all__ = ["answer_messages", "answer_repair_messages", "load_prompt", "plan_messages", "plan_repair_messages"]


def load_prompt(name: str) -> str:
    """The text of ``prompts/<name>.txt`` beside this module (read once), without a trailing newline."""
    return read_prompt("agents.navigator", name)


def _manifest_block(manifest: str) -> str:
    lines = [" ".join(line.split()).replace("<", "‹").replace(">", "›") for line in manifest.splitlines()]
    return "\n".join([DATA_OPEN, *(line for line in lines if line), DATA_CLOSE])


def plan_messages(question: str, window: str, manifest: str) -> list[BaseMessage]:
    """System rules, then the question, the dates sentence and the manifest as quoted data."""
    return [
        SystemMessage(render(load_prompt("plan_system"), max_fetches=MAX_FETCHES)),
        HumanMessage(
            render(load_prompt("plan"), question=question.strip(), window=window, manifest=_manifest_block(manifest))
        ),
    ]


def plan_repair_messages(
    messages: Sequence[BaseMessage], bad_reply: str, reason: str, types: Sequence[str]
) -> list[BaseMessage]:
    text = render(
        load_prompt("plan_repair"), reason=reason, types=", ".join(types) or "none", example=render_plan_example(types)
    )
    return [*messages, AIMessage(bad_reply.strip() or "(empty reply)"), HumanMessage(text)]


def answer_messages(question: str, window: str, facts: Sequence[Fact]) -> list[BaseMessage]:
    """System rules, then the question, the dates sentence and the numbered facts as quoted data."""
    return [
        SystemMessage(load_prompt("answer_system")),
        HumanMessage(
            render(
                load_prompt("answer"),
                question=question.strip(),
                window=window,
                count=len(facts),
                facts=data_block(facts),
            )
        ),
    ]


def answer_repair_messages(
    messages: Sequence[BaseMessage], bad_reply: str, reason: str, facts: Sequence[Fact]
) -> list[BaseMessage]:
    # Only a reference (a checked Type/id) from the facts appears here: record text stays inside the data block.
    reference = facts[0].reference if facts else "Observation/abc"
    example = '{"answer": "<the fact> [' + reference + ']", "citations": ["' + reference + '"]}'
    text = render(load_prompt("answer_repair"), reason=reason, example=example)
    return [*messages, AIMessage(bad_reply.strip() or "(empty reply)"), HumanMessage(text)]
