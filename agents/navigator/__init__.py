"""The record navigator: answers a clinician's question from a patient's record with ``[Type/id]`` citations.

The model-driven steps of the record question-answering graph, as a role that takes its chat model:
``Navigator(model).plan(question, manifest=..., catalog=..., window=..., now=...)`` returns a ``PlanTurn``
(a validated ``FetchPlan``), ``Navigator(model).answer(question, facts, window=..., now=...)`` an ``AnswerTurn``.
Neither raises because of the model: one repair call, then a deterministic fallback (``keyword_plan``,
``extractive_answer``). The pure parts stand alone: ``resolve_window`` (date phrases against a stated now),
``check_citations`` (keep only citations of fetched resources), ``parse_plan`` / ``parse_answer``.
This package never imports ``tools`` or ``graphs``: facts arrive as rendered lines (``Fact``).
"""

from agents.navigator.answer import Fact, data_block, extractive_answer, parse_answer
from agents.navigator.citations import CitationCheck, check_citations, find_citations
from agents.navigator.dates import DateWindow, describe_window, resolve_window
from agents.navigator.navigator import AnswerTurn, Navigator, PlanTurn, StepCost
from agents.navigator.plan import (
    Catalog,
    FetchPlan,
    PlannedFetch,
    keyword_plan,
    parse_plan,
    validate_plan,
)

__all__ = [
    "AnswerTurn",
    "Catalog",
    "CitationCheck",
    "DateWindow",
    "Fact",
    "FetchPlan",
    "Navigator",
    "PlanTurn",
    "PlannedFetch",
    "StepCost",
    "check_citations",
    "data_block",
    "describe_window",
    "extractive_answer",
    "find_citations",
    "keyword_plan",
    "parse_answer",
    "parse_plan",
    "resolve_window",
    "validate_plan",
]
