"""Where a JSON reply ends, for the local backend's stop-at-the-closing-brace rule."""

from agents.backends.json_stop import json_object_end


def test_open_object_has_no_end() -> None:
    assert json_object_end('{"action": "ask", "text": "Any fe') is None
    assert json_object_end("Let me think about this.") is None


def test_end_is_just_past_the_closing_brace() -> None:
    text = 'Sure! {"a": {"b": [1, 2]}, "c": "x"} and then more words'
    end = json_object_end(text)
    assert end is not None and text[:end].endswith('"x"}')


def test_braces_inside_strings_do_not_count() -> None:
    text = '{"text": "a } brace and a \\" quote {", "n": 1}'
    assert json_object_end(text) == len(text)


def test_thinking_block_is_skipped() -> None:
    assert json_object_end("<unused94>thought\n{draft} still thinking") is None
    text = '<unused94>thought\n{"draft": 1}<unused95>{"action": "ask"}'
    assert json_object_end(text) == len(text)
