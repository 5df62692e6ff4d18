"""The shared model call: per-call generation arguments, dropped for good once a model refuses them."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from agents.model_calls import GenerationCall, read_reply


class _Refusing:
    """A chat model whose client takes no extra keyword arguments, as some foreign LangChain models."""

    def __init__(self, error: str = "create() got an unexpected keyword argument 'max_new_tokens'") -> None:
        self.error = error
        self.calls: list[dict[str, Any]] = []

    async def ainvoke(self, messages: list[Any], **kwargs: Any) -> AIMessage:
        self.calls.append(kwargs)
        if kwargs:
            raise TypeError(self.error)
        return AIMessage("ok", response_metadata={"model": "m", "thinking": "t"},
                         usage_metadata={"input_tokens": 3, "output_tokens": 1, "total_tokens": 4})


async def test_a_refusing_model_is_called_plainly_from_then_on() -> None:
    model = _Refusing()
    call = GenerationCall(model)  # type: ignore[arg-type]
    first = await call.ainvoke([HumanMessage("hi")], max_new_tokens=8)
    second = await call.ainvoke([HumanMessage("hi")], max_new_tokens=8, json_schema={})
    assert (first.text, second.text) == ("ok", "ok")
    assert model.calls == [{"max_new_tokens": 8}, {}, {}]  # one refused call, then plain ones only
    assert call.plain


async def test_another_type_error_is_a_bug_and_propagates() -> None:
    call = GenerationCall(_Refusing("unsupported operand type(s)"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unsupported operand"):
        await call.ainvoke([HumanMessage("hi")], max_new_tokens=8)
    assert not call.plain


def test_read_reply_takes_text_thinking_and_usage() -> None:
    reply = read_reply(AIMessage("<unused94>thought\nhmm<unused95>Pneumonia", response_metadata={"model": "m"},
                                 usage_metadata={"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}))
    assert (reply.text, reply.thinking, reply.input_tokens, reply.output_tokens, reply.model) == (
        "Pneumonia", "hmm", 5, 2, "m")
    assert read_reply("plain text") == read_reply("plain text") and read_reply("plain text").model is None
