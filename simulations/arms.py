"""Arms: which doctor a consultation runs with, as one label a benchmark groups its results by.

Labels: ``single`` (the one-node doctor), ``panel`` (the diagnostic panel, variant "no-budget") and
``panel:<variant>`` for the panel's other variants (``panel:budgeted``, ``panel:instant``, ``panel:questions``,
``panel:ensemble``). ``parse_arms`` turns the command line's ``--doctor`` and ``--variant`` choices into labels;
``arm_setup`` turns a label and the run's panel options into the consultation's doctor fields
(``ConsultationSetup``'s ``doctor_mode``, ``panel_policy``, ``budget``, ``approve``, ``expensive_over``), and
``DoctorRules`` is those fields together: checked, and as the graph's input, the panel part and the transcript's
"doctor" block.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.language_models import BaseChatModel

from agents.panel.policy import DEFAULT_ENSEMBLE_MEMBERS, VARIANTS, PanelPolicy
from agents.panel.roles import Panel
from graphs.approvals import APPROVAL_POLICIES, DEFAULT_EXPENSIVE_OVER

__all__ = [
    "DEFAULT_MEMBERS", "DEFAULT_VARIANT", "DOCTOR_MODES", "PANEL", "SINGLE", "DoctorRules", "arm_label", "arm_policy", "arm_setup",
    "check_arm", "check_arm_options", "parse_arms", "split_arm", "split_choices",
]

SINGLE = "single"
PANEL = "panel"
DOCTOR_MODES: tuple[str, ...] = (SINGLE, PANEL)
DEFAULT_VARIANT = "no-budget"
DEFAULT_MEMBERS = DEFAULT_ENSEMBLE_MEMBERS  # an ensemble's panels when none are named


def split_choices(values: Iterable[str] | None) -> list[str]:
    """Repeatable options that also take comma lists (``--doctor single,panel --doctor panel``): each value once,
    in order of first mention, blanks dropped."""
    found: dict[str, None] = {}
    for value in values or ():
        for part in value.split(","):
            if part.strip():
                found.setdefault(part.strip(), None)
    return list(found)


def arm_label(doctor: str, variant: str | None = None) -> str:
    """The label of ``doctor`` ("single" or "panel") in ``variant`` (panel only; None or "no-budget": plain
    "panel")."""
    if doctor not in DOCTOR_MODES:
        raise ValueError(f"unknown doctor {doctor!r}; choose one of: {', '.join(DOCTOR_MODES)}")
    if doctor == SINGLE:
        if variant not in (None, DEFAULT_VARIANT):
            raise ValueError(f"the single doctor has no variants (got {variant!r}); variants go with --doctor panel")
        return SINGLE
    if variant is None or variant == DEFAULT_VARIANT:
        return PANEL
    if variant not in VARIANTS:
        raise ValueError(f"unknown panel variant {variant!r}; choose one of: {', '.join(VARIANTS)}")
    return f"{PANEL}:{variant}"


def split_arm(arm: str) -> tuple[str, str | None]:
    """(doctor mode, panel variant) of a label: ("single", None), ("panel", "no-budget"), ("panel", "budgeted")."""
    doctor, sep, variant = arm.partition(":")
    if doctor == SINGLE and not sep:
        return SINGLE, None
    if doctor == PANEL and (not sep or variant in VARIANTS):
        return PANEL, variant if sep else DEFAULT_VARIANT
    choices = [SINGLE, PANEL, *(f"{PANEL}:{v}" for v in VARIANTS if v != DEFAULT_VARIANT)]
    raise ValueError(f"unknown arm {arm!r}; choose one of: {', '.join(choices)}")


def check_arm(arm: str) -> str:
    """The canonical label of ``arm`` ("panel:no-budget" is "panel"); ValueError naming the choices."""
    return arm_label(*split_arm(arm.strip()))


def parse_arms(doctors: Sequence[str] | None = None, variants: Sequence[str] | None = None) -> list[str]:
    """The arms of ``--doctor`` and ``--variant`` (each repeatable or comma lists): "single" for the single doctor,
    and for the panel one arm per variant (none named: "panel", the no-budget variant). No doctor named: "single"."""
    doctor_list = split_choices(doctors) or [SINGLE]
    variant_list = split_choices(variants)
    for doctor in doctor_list:
        arm_label(doctor)  # names the choices for an unknown doctor
    if variant_list and PANEL not in doctor_list:
        raise ValueError("--variant chooses panel variants: add --doctor panel (e.g. --doctor single,panel)")
    arms: list[str] = []
    for doctor in doctor_list:
        if doctor == SINGLE:
            arms.append(SINGLE)
        else:
            arms.extend(arm_label(PANEL, variant) for variant in variant_list or [DEFAULT_VARIANT])
    return list(dict.fromkeys(arms))


def check_arm_options(arms: Sequence[str], budget: float | None) -> None:
    """A budgeted arm needs a budget, and a budget needs a budgeted arm (a benchmark's other arms run without one,
    so they stay the unbudgeted comparison): ValueError saying which."""
    budgeted = [arm for arm in arms if split_arm(arm)[1] == "budgeted"]
    if budgeted and (budget is None or budget <= 0):
        raise ValueError("the budgeted panel variant needs --budget USD (a positive amount)")
    if budget is not None and not budgeted:
        raise ValueError("--budget applies to the budgeted panel variant only: add --doctor panel --variant budgeted")


def arm_policy(arm: str, *, budget: float | None = None, members: int = DEFAULT_MEMBERS,
               aggregate: str = "mean") -> PanelPolicy | None:
    """The panel policy of ``arm`` (None for the single doctor); the budget only for "budgeted", the members and
    their aggregation only for "ensemble"."""
    doctor, variant = split_arm(arm)
    if doctor == SINGLE or variant is None:
        return None
    return PanelPolicy.build(
        variant,
        budget=budget if variant == "budgeted" else None,
        members=members if variant == "ensemble" else None,
        aggregate=aggregate if variant == "ensemble" else "mean",
    )


def arm_setup(arm: str, *, budget: float | None = None, members: int = DEFAULT_MEMBERS,
              aggregate: str = "mean") -> dict[str, Any]:
    """``ConsultationSetup``'s doctor fields for a benchmark attempt in ``arm``. Benchmark runs never pause for a
    clinician (approve "none"), and only the budgeted arm has a budget, which the graph enforces too."""
    policy = arm_policy(arm, budget=budget, members=members, aggregate=aggregate)
    return {
        "doctor_mode": split_arm(arm)[0],
        "panel_policy": policy,
        "budget": policy.budget if policy is not None else None,
        "approve": "none",
    }


@dataclass(frozen=True)
class DoctorRules:
    """Who decides a consultation and under which rules: the doctor mode, the panel's policy (panel only), the most
    it may spend (USD; None: no limit), when a clinician must approve, and from what price a test is expensive."""

    mode: str = SINGLE
    policy: PanelPolicy | None = None
    budget: float | None = None
    approve: str = "none"
    expensive_over: float = DEFAULT_EXPENSIVE_OVER

    @classmethod
    def from_state(cls, state: Mapping[str, Any], default: DoctorRules) -> DoctorRules:
        """The rules a consultation started with (its graph input, kept in its state), so a resumed consultation
        goes on, and its transcript reports, as it began; ``default`` when the state has none (not started yet, or
        from before there were doctor rules)."""
        if not state.get("doctor"):
            return default
        policy = state.get("panel_policy")
        return cls(
            mode=str(state["doctor"]),
            policy=PanelPolicy.from_dict(policy) if policy else None,
            budget=state.get("budget"),
            approve=str(state.get("approve") or default.approve),
            expensive_over=float(state.get("expensive_over", default.expensive_over)),
        )

    def checked(self, *, doctor_bias: str | None = None) -> DoctorRules:
        """These rules validated (ValueError naming what is wrong), the panel's default policy filled in."""
        if self.mode not in DOCTOR_MODES:
            raise ValueError(f"unknown doctor {self.mode!r}; choose one of: {', '.join(DOCTOR_MODES)}")
        if self.approve not in APPROVAL_POLICIES:
            raise ValueError(f"unknown approval policy {self.approve!r}; choose one of: {', '.join(APPROVAL_POLICIES)}")
        if self.budget is not None and self.budget <= 0:
            raise ValueError(f"the budget must be a positive amount of USD, not {self.budget}")
        if self.mode == SINGLE:
            if self.policy is not None:
                raise ValueError("a panel policy goes with the panel doctor, not the single one")
            return self
        if doctor_bias is not None:
            # A doctor bias is a note in the single doctor's prompt; the panel's roles have no place for it.
            raise ValueError("doctor biases apply to the single doctor only, not to the panel")
        return self if self.policy is not None else replace(self, policy=PanelPolicy())

    def panel(self, model: BaseChatModel, max_new_tokens: int) -> Panel | None:
        """The panel's roles on ``model`` (the reasoning model); None for the single doctor."""
        return Panel(model, max_new_tokens=max_new_tokens) if self.mode == PANEL else None

    def graph_input(self) -> dict[str, Any]:
        """The doctor's part of the consultation graph's input."""
        fields: dict[str, Any] = {"doctor": self.mode, "budget": self.budget, "approve": self.approve,
                                  "expensive_over": self.expensive_over}
        if self.policy is not None:
            fields["panel_policy"] = self.policy.to_dict()
        return fields

    def block(self) -> dict[str, Any]:
        """The transcript's (and the origin's) "doctor": who decided and under which rules."""
        policy = self.policy
        return {
            "mode": self.mode,
            "arm": arm_label(self.mode, policy.variant if policy is not None else None),
            "variant": policy.variant if policy is not None else None,
            "members": policy.members if policy is not None else 1,
            "aggregate": policy.aggregate if policy is not None else None,
            "budget": self.budget,
            "approve": self.approve,
            "expensive_over": self.expensive_over,
            "policy": policy.to_dict() if policy is not None else None,
        }
