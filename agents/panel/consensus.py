"""The panel's consensus: exactly one action from the roles' outputs, by fixed rules and without a model call.

Rules, first that applies wins:

1. the final turn, or the "instant" variant: diagnose the top of the differential;
2. diagnose when the top probability reaches the commit threshold, no challenger says the leader does not hold and
   the checklist (when it answered) is ready; or when most member hypotheses say "diagnose" with the top probability
   within 0.1 of the threshold;
3. when most member hypotheses want a test (or want to diagnose but may not yet): the first candidate test that
   survives the filters. Candidates are the test-chooser's tests (all members, in order), then the challenger's
   falsifying test, with stewardship's substitutions applied; a candidate is skipped, with its reason, when it is
   in the "questions" variant, not a test name, already done, vetoed by stewardship, blocked by a contraindication,
   or over the budget;
4. otherwise a question: the test-chooser's record question, its image request, the hypothesis' question (each only
   when offered and not asked before), else the history-taking fallback question. In the budgeted variant a new
   question round that the budget cannot pay for is not asked: the panel diagnoses instead.

A failed role is listed in ``failed_roles`` and the rules go on without it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from agents.doctor.decision import is_placeholder
from agents.doctor.fallbacks import NO_DIAGNOSIS, safe_question
from agents.panel.aggregate import aggregate_differentials
from agents.panel.brief import PanelBrief
from agents.panel.contraindications import PatientFacts, TestTraits, check_order
from agents.panel.fees import FeeTable, PricedTest, normalise
from agents.panel.ledger import VISIT_PRICE, CostLedger
from agents.panel.outputs import Challenge, ChecklistView, HypothesisView, StewardshipView, TestChoice
from agents.panel.policy import PanelPolicy
from agents.panel.roles import RoleResult

__all__ = ["Consensus", "ConsensusAction", "SkippedTest", "decide_consensus", "order_traits"]

ConsensusAction = Literal["ask", "test", "record", "image", "diagnose"]

# A candidate longer than this is a sentence, not a test a clinician would order.
_MAX_TEST_WORDS = 12


@dataclass(frozen=True)
class SkippedTest:
    """A candidate test the consensus did not order, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class Consensus:
    """The panel's one action this turn, with which roles drove it and what it passed over."""

    action: ConsensusAction
    text: str
    rationale: str
    differential: list[tuple[str, float]]
    moved_by: list[str]
    used_roles: list[str]
    failed_roles: list[str]
    skipped: list[SkippedTest] = field(default_factory=list)
    priced: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["differential"] = [[name, probability] for name, probability in self.differential]
        return data


@dataclass
class _Views:
    """The successful roles' outputs, typed, in result order, with the roles' labels."""

    hypotheses: list[HypothesisView] = field(default_factory=list)
    choices: list[TestChoice] = field(default_factory=list)
    challenges: list[Challenge] = field(default_factory=list)
    stewards: list[StewardshipView] = field(default_factory=list)
    checklists: list[ChecklistView] = field(default_factory=list)
    used: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


_OUTPUTS = {"hypothesis": ("hypotheses", HypothesisView), "test_chooser": ("choices", TestChoice),
            "challenger": ("challenges", Challenge), "stewardship": ("stewards", StewardshipView),
            "checklist": ("checklists", ChecklistView)}


def _read(results: Sequence[RoleResult]) -> _Views:
    views = _Views()
    for result in results:
        label = f"{result.role}#{result.member}"
        if not result.ok or result.output is None:
            views.failed.append(f"{label}: {result.error or 'no output'}")
            continue
        name, model = _OUTPUTS[result.role]
        getattr(views, name).append(model.model_validate(result.output))
        views.used.append(label)
    return views


def order_traits(test: PricedTest) -> TestTraits:
    """What safety needs to know about a priced test; MRI is read from the name, which the table normalises."""
    return TestTraits(
        name=test.canonical or test.requested,
        uses_contrast=test.uses_contrast,
        ionising_radiation=test.ionising_radiation,
        mri="mri" in normalise(test.canonical or test.requested),
        invasive=test.invasive,
    )


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


class _Orders:
    """Test names priced and compared the way the graph's order gate prices them (one order may name several)."""

    def __init__(self, fees: FeeTable) -> None:
        self.fees = fees

    def price(self, text: str) -> list[PricedTest]:
        return self.fees.price_order(text)

    def keys(self, text: str) -> frozenset[str]:
        """The identity of each test in an order: its table name, else its normalised words."""
        return frozenset(p.canonical or " ".join(normalise(p.requested)) or _fold(p.requested) for p in self.price(text))


def _not_a_test(name: str) -> bool:
    return not name.strip() or is_placeholder(name) or name.strip().endswith("?") or len(name.split()) > _MAX_TEST_WORDS


@dataclass
class _TestPick:
    name: str | None = None
    who: str = ""
    priced: list[PricedTest] = field(default_factory=list)
    skipped: list[SkippedTest] = field(default_factory=list)
    substituted: list[str] = field(default_factory=list)


def _pick_test(
    views: _Views, brief: PanelBrief, policy: PanelPolicy, ledger: CostLedger, facts: PatientFacts | None,
    orders: _Orders,
) -> _TestPick:
    proposed = [(t.name, "test_chooser") for choice in views.choices for t in choice.tests]
    proposed += [(c.falsifying_test, "challenger") for c in views.challenges if c.falsifying_test]
    substitutes = {_fold(s.instead_of): s.use for view in views.stewards for s in view.substitutions}
    substitute_keys = {orders.keys(s.instead_of): s.use for view in views.stewards for s in view.substitutions}
    vetoed = frozenset().union(*(orders.keys(v) for view in views.stewards for v in view.vetoes))
    done = frozenset().union(*(orders.keys(t) for t in brief.tests_done))
    pick = _TestPick()
    seen: set[frozenset[str]] = set()
    for name, who in proposed:
        use = substitutes.get(_fold(name)) or substitute_keys.get(orders.keys(name))
        if use and _fold(use) != _fold(name):
            pick.substituted.append(f"{name} -> {use}")
            name = use
        keys = orders.keys(name)
        if keys in seen:
            continue
        seen.add(keys)
        priced = orders.price(name)
        reason = _skip_reason(name, keys, priced, brief, policy, ledger, facts, vetoed, done)
        if reason is not None:
            pick.skipped.append(SkippedTest(name=name, reason=reason))
        elif pick.name is None:
            pick.name, pick.who, pick.priced = name, who, priced
    return pick


def _skip_reason(
    name: str, keys: frozenset[str], priced: list[PricedTest], brief: PanelBrief, policy: PanelPolicy,
    ledger: CostLedger, facts: PatientFacts | None, vetoed: frozenset[str], done: frozenset[str],
) -> str | None:
    if policy.variant == "questions":
        return "questions-only variant"
    if _not_a_test(name):
        return "unknown test name"
    if keys <= done:
        return "already done"
    if keys & vetoed:
        return "vetoed by stewardship"
    if facts is not None:
        blocks = [c for test in priced for c in check_order(order_traits(test), facts) if c.severity == "block"]
        if blocks:
            return "blocked: " + " ".join(c.reason for c in blocks)
    if ledger.would_exceed(policy.budget, priced):
        return f"over budget (${ledger.remaining(policy.budget):,.0f} left)"
    return None


def _majority_step(views: _Views) -> str:
    """The next step most member hypotheses chose (ties to the first member's); without any, test if one was
    proposed, else ask."""
    if views.hypotheses:
        return Counter(h.next_step for h in views.hypotheses).most_common(1)[0][0]
    return "test" if any(c.tests for c in views.choices) else "ask"


def decide_consensus(
    brief: PanelBrief,
    results: Sequence[RoleResult],
    differential: Sequence[tuple[str, float]],
    policy: PanelPolicy,
    *,
    ledger: CostLedger,
    facts: PatientFacts | None,
    fees: FeeTable | None = None,
    final: bool = False,
) -> Consensus:
    """The panel's one action for this turn from this turn's role ``results`` (all members) and the aggregated
    ``differential``. Pure: no model call, nothing mutated."""
    views = _read(results)
    ids = brief.finding_ids
    members = [[(d.diagnosis, d.probability) for d in h.differential] for h in views.hypotheses]
    # An empty aggregate with hypotheses that named diagnoses would lose them; never diagnose from nothing.
    diff = [(str(n), float(p)) for n, p in differential] or aggregate_differentials(members, policy.aggregate)
    moved_by = list(dict.fromkeys(i for h in views.hypotheses for i in h.moved_by if i in ids))
    notes: list[str] = []

    def decide(action: ConsensusAction, text: str, pick: _TestPick | None = None) -> Consensus:
        return Consensus(
            action=action, text=text, rationale="; ".join(notes), differential=diff, moved_by=moved_by,
            used_roles=views.used, failed_roles=views.failed, skipped=pick.skipped if pick else [],
            priced=[p.to_dict() for p in pick.priced] if pick and action == "test" else [],
        )

    def diagnose(pick: _TestPick | None = None) -> Consensus:
        return decide("diagnose", diff[0][0] if diff else NO_DIAGNOSIS, pick)

    top = diff[0][1] if diff else 0.0
    if final or policy.variant == "instant":
        notes.append("final turn: must diagnose" if final else "instant variant: diagnose at once")
        return diagnose()
    objections = [c for c in views.challenges if not c.leader_holds]
    not_ready = [c for c in views.checklists if not c.ready_to_diagnose]
    if diff and top >= policy.commit_threshold and not objections and not not_ready:
        notes.append(f"hypothesis: {diff[0][0]} {top:.0%} reaches the {policy.commit_threshold:.0%} threshold")
        notes.append("challenger: no objection" if views.challenges else "challenger: no answer")
        notes.append("checklist: ready" if views.checklists else "checklist: no answer")
        return diagnose()
    commit_votes = sum(h.next_step == "diagnose" for h in views.hypotheses)
    if diff and 2 * commit_votes > len(views.hypotheses) and top >= policy.commit_threshold - 0.1:
        notes.append(f"hypothesis: {commit_votes} of {len(views.hypotheses)} members diagnose {diff[0][0]} at {top:.0%}")
        return diagnose()

    step = _majority_step(views)
    notes.append(f"hypothesis: next step {step}" if views.hypotheses else f"hypothesis: none answered; {step}")
    if objections:
        notes.append(f"challenger: {objections[0].concern or 'the leader does not hold'}")
    pick = _TestPick()
    if step != "ask":  # "diagnose" that may not commit yet gathers evidence first, as "test" does
        pick = _pick_test(views, brief, policy, ledger, facts, _Orders(fees or FeeTable.default()))
        if pick.substituted:
            notes.append(f"stewardship: {'; '.join(pick.substituted)}")
        if pick.name is not None:
            price = sum(p.price for p in pick.priced)
            notes.append(f"{pick.who}: {pick.name} (${price:,.0f})")
            if views.stewards and not any(s.reason == "vetoed by stewardship" for s in pick.skipped):
                notes.append("stewardship: no veto")
            return decide("test", pick.name, pick)
        notes.append("no test left to order" if pick.skipped else "no test proposed")

    asked = {_fold(q) for q in brief.questions_asked}
    record_q = next((c.record_question for c in views.choices if c.record_question), "")
    if brief.can_record and record_q and _fold(record_q) not in asked:
        notes.append("test_chooser: record lookup")
        return decide("record", record_q, pick)
    image_q = next((c.image_request for c in views.choices if c.image_request), "")
    if brief.can_image and image_q and _fold(image_q) not in asked:
        notes.append("test_chooser: image read")
        return decide("image", image_q, pick)
    # A question that continues a round is free; a new round costs a visit, which the budget may not allow.
    new_round = brief.previous_action != "ask"
    if new_round and policy.budget is not None and ledger.total + VISIT_PRICE > policy.budget:
        notes.append(f"budget: ${ledger.remaining(policy.budget):,.0f} left cannot pay a visit")
        return diagnose(pick)
    question = next((h.question for h in views.hypotheses if h.question and _fold(h.question) not in asked), "")
    if question:
        notes.append("hypothesis: question")
        return decide("ask", question, pick)
    notes.append("fallback question")
    return decide("ask", safe_question(None, list(brief.questions_asked)).text, pick)
