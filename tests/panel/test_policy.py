"""Panel policies: the variants, their checked construction and their round trip through plain data."""

from __future__ import annotations

import json

import pytest

from agents.panel import VARIANTS, PanelPolicy


def test_the_variants_and_defaults() -> None:
    assert VARIANTS == ("no-budget", "budgeted", "instant", "questions", "ensemble")
    assert PanelPolicy() == PanelPolicy.build("no-budget")
    # A budget means nothing to the panel outside the budgeted variant.
    assert PanelPolicy.build("no-budget", budget=900).budget is None
    assert PanelPolicy.build("budgeted", budget=1500) == PanelPolicy(variant="budgeted", budget=1500.0)
    ensemble = PanelPolicy.build("ensemble", aggregate="majority")
    assert (ensemble.members, ensemble.aggregate) == (3, "majority")
    assert PanelPolicy.build("ensemble", members=5).members == 5


@pytest.mark.parametrize(
    ("variant", "kwargs", "field"),
    [
        ("panel", {}, "variant"),
        ("budgeted", {}, "budget"),
        ("budgeted", {"budget": 0}, "budget"),
        ("budgeted", {"budget": -10.0}, "budget"),
        ("budgeted", {"budget": "lots"}, "budget"),
        ("ensemble", {"members": 1}, "members"),
        ("questions", {"members": 3}, "members"),
        ("no-budget", {"aggregate": "median"}, "aggregate"),
        ("no-budget", {"commit_threshold": 0.0}, "commit_threshold"),
        ("no-budget", {"commit_threshold": 1.5}, "commit_threshold"),
    ],
)
def test_build_names_the_bad_field(variant: str, kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field} "):
        PanelPolicy.build(variant, **kwargs)


def test_a_policy_round_trips_through_json() -> None:
    for policy in (PanelPolicy.build("budgeted", budget=800), PanelPolicy.build("ensemble", aggregate="majority"),
                   PanelPolicy.build("instant", commit_threshold=0.8)):
        assert PanelPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy
    with pytest.raises(ValueError, match="budget"):
        PanelPolicy.from_dict({"variant": "budgeted"})
