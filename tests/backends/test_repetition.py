from __future__ import annotations

import pytest
import torch

from agents.backends.repetition import RepeatedTail, find_repeated_tail, trim_repeated_tail

BLOCK = list(range(100, 108))  # 8 tokens


def test_no_repetition() -> None:
    assert find_repeated_tail(list(range(200))) is None
    assert find_repeated_tail([]) is None


def test_three_copies_of_eight_tokens() -> None:
    ids = [1, 2, 3] + BLOCK * 3
    assert find_repeated_tail(ids) == RepeatedTail(period=8, repeats=3)


def test_two_copies_are_not_a_loop() -> None:
    assert find_repeated_tail([1, 2, 3] + BLOCK * 2) is None


def test_counts_all_copies() -> None:
    assert find_repeated_tail(BLOCK * 5) == RepeatedTail(period=8, repeats=5)


def test_short_loop_caught_through_multiple() -> None:
    ids = [9] + [1, 2, 3] * 9  # a 3-token loop, 27 tokens: a 9-token block repeated 3 times
    assert find_repeated_tail(ids) == RepeatedTail(period=9, repeats=3)


def test_single_token_run() -> None:
    assert find_repeated_tail([5] * 24) == RepeatedTail(period=8, repeats=3)
    assert find_repeated_tail([5] * 23) is None


def test_long_period_limit() -> None:
    block = list(range(41))
    assert find_repeated_tail(block * 3) is None  # longer than max_period
    assert find_repeated_tail(block * 3, max_period=41) == RepeatedTail(period=41, repeats=3)


def test_repetition_must_be_at_the_tail() -> None:
    assert find_repeated_tail(BLOCK * 3 + list(range(20))) is None


def test_trim_keeps_one_copy() -> None:
    ids = [1, 2] + BLOCK * 4
    tail = find_repeated_tail(ids)
    assert tail is not None and tail.surplus == 24
    assert list(trim_repeated_tail(ids, tail)) == [1, 2] + BLOCK


def test_works_on_text() -> None:
    text = "Start. " + "I am sorry for that. " * 4
    tail = find_repeated_tail(text, max_period=100)
    assert tail is not None
    assert trim_repeated_tail(text, tail) == "Start. I am sorry for that. "


@pytest.mark.parametrize("kwargs", [{"min_period": 0}, {"min_period": 9, "max_period": 8}, {"min_repeats": 1}])
def test_bad_arguments(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        find_repeated_tail([1, 2, 3], **kwargs)


def test_stopping_criterion_looks_at_generated_tokens_only() -> None:
    from agents.backends.local_generate import RepetitionStop

    prompt = BLOCK * 3  # a repetitive prompt must not stop generation
    stop = RepetitionStop(prompt_length=len(prompt))
    ids = torch.tensor([prompt + [1, 2, 3]])
    assert stop(ids, None).tolist() == [False] and stop.found is None
    looping = torch.tensor([prompt + [1, 2, 3] + BLOCK * 3])
    assert stop(looping, None).tolist() == [True]
    assert stop.found == RepeatedTail(period=8, repeats=3)
