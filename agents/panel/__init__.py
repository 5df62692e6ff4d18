"""The diagnostic panel: five roles (hypothesis, then test-chooser, challenger, stewardship and checklist side by
side) deliberating on one ``PanelBrief``, a pure consensus that turns their outputs into exactly one action, the
ensemble's aggregation of differentials, and the variants (``PanelPolicy``). Beside them: a fee table for tests and
a cost ledger for a consultation, can't-miss diagnoses kept in the differential until excluded, and contraindication
checks of ordered tests against patient facts.

``await Panel(model).run_role(role, brief)`` returns a ``RoleResult`` and never raises for the model;
``decide_consensus(brief, results, differential, policy, ledger=..., facts=...)`` returns a ``Consensus``.
"""

from agents.panel.aggregate import aggregate_differentials
from agents.panel.brief import BriefFinding, PanelBrief, render_brief
from agents.panel.cant_miss import (
    CantMiss,
    CantMissTable,
    cant_miss_for,
    complaints_in,
    excluding_finding,
    keep_in_differential,
    load_cant_miss_table,
    open_cant_miss,
    parse_cant_miss_table,
)
from agents.panel.consensus import Consensus, ConsensusAction, SkippedTest, decide_consensus, order_traits
from agents.panel.contraindications import (
    Contraindication,
    Contrast,
    Fact,
    Lab,
    PatientFacts,
    Severity,
    TestTraits,
    check_order,
    creatinine_mg_dl,
    is_blocked,
    platelets_per_nl,
)
from agents.panel.fees import DEFAULT_TEST_PRICE, FeeEntry, FeeTable, PricedTest, lookup, lookup_order, normalise
from agents.panel.ledger import VISIT_PRICE, CostLedger, LedgerEntry
from agents.panel.outputs import (
    ROLE_OUTPUTS,
    Challenge,
    ChecklistView,
    HypothesisView,
    ProposedTest,
    RankedDiagnosis,
    StewardshipView,
    Substitution,
    TestChoice,
    role_json_schema,
)
from agents.panel.policy import AGGREGATES, VARIANTS, Aggregate, PanelPolicy, Variant
from agents.panel.roles import PARALLEL_ROLES, ROLES, Panel, RoleName, RoleResult, parse_role_reply, role_messages

__all__ = [
    "AGGREGATES",
    "DEFAULT_TEST_PRICE",
    "PARALLEL_ROLES",
    "ROLES",
    "ROLE_OUTPUTS",
    "VARIANTS",
    "VISIT_PRICE",
    "Aggregate",
    "BriefFinding",
    "CantMiss",
    "CantMissTable",
    "Challenge",
    "ChecklistView",
    "Consensus",
    "ConsensusAction",
    "Contraindication",
    "Contrast",
    "CostLedger",
    "Fact",
    "FeeEntry",
    "FeeTable",
    "HypothesisView",
    "Lab",
    "LedgerEntry",
    "Panel",
    "PanelBrief",
    "PanelPolicy",
    "PatientFacts",
    "PricedTest",
    "ProposedTest",
    "RankedDiagnosis",
    "RoleName",
    "RoleResult",
    "Severity",
    "SkippedTest",
    "StewardshipView",
    "Substitution",
    "TestChoice",
    "TestTraits",
    "Variant",
    "aggregate_differentials",
    "cant_miss_for",
    "check_order",
    "complaints_in",
    "creatinine_mg_dl",
    "decide_consensus",
    "excluding_finding",
    "is_blocked",
    "keep_in_differential",
    "load_cant_miss_table",
    "lookup",
    "lookup_order",
    "normalise",
    "open_cant_miss",
    "order_traits",
    "parse_cant_miss_table",
    "parse_role_reply",
    "platelets_per_nl",
    "render_brief",
    "role_json_schema",
    "role_messages",
]
