"""A hand-written transcript of a panel consultation with every part the renderers show: findings with ids, sources
and refs, differentials with moved_by / kept / by, the cost ledger, a blocked order, approvals and the panel's
deliberation. Shared by the Markdown and HTML transcript tests."""

from __future__ import annotations

import copy
from typing import Any

ECG_SHA = "ab" * 32

_PANEL_TRANSCRIPT: dict[str, Any] = {
    "version": 1, "thread_id": "t-panel", "attempt": "chest|none|0", "protocol": "clinicflow",
    "case": {"id": "chest", "dataset": "demo", "objective": "Chest pain for two hours.",
             "correct_diagnosis": "Acute coronary syndrome"},
    "environment": "normal-readings", "max_turns": 8,
    "models": {"reasoning": "fake:panel"},
    "doctor": {"mode": "panel", "variant": "budgeted", "members": 1, "aggregate": "mean", "budget": 1500.0,
               "approve": "expensive"},
    "dialogue": [
        {"turn": 1, "role": "doctor", "action": "ask", "text": "Where is the pain?"},
        {"turn": 1, "role": "patient", "text": "Central, crushing, into my left arm."},
        {"turn": 2, "role": "doctor", "action": "test", "text": "Troponin"},
        {"turn": 2, "role": "measurement", "text": "Troponin I 2.1 ng/mL (elevated)"},
        {"turn": 3, "role": "doctor", "action": "test", "text": "CT abdomen with contrast"},
        {"turn": 3, "role": "safety", "text": "CT abdomen with contrast was not ordered: eGFR 12."},
    ],
    "findings": [
        {"id": "F1", "turn": 0, "source": "record", "text": "End stage renal disease; eGFR 12 mL/min",
         "refs": ["Condition/esrd/_history/3", "Observation/egfr/_history/2"]},
        {"id": "F2", "turn": 0, "source": "image:ecg1", "text": "ST elevation in V2-V4",
         "refs": [f"image:ecg1@sha256:{ECG_SHA}"]},
        {"id": "F3", "turn": 1, "source": "patient", "text": "Central, crushing, into my left arm."},
        {"id": "F4", "turn": 2, "source": "test:Troponin", "text": "Troponin I 2.1 ng/mL (elevated)"},
    ],
    "differentials": [
        {"turn": 1, "by": "panel", "moved_by": ["F1", "F2"], "kept": [],
         "items": [{"diagnosis": "Acute coronary syndrome", "probability": 0.4},
                   {"diagnosis": "Pulmonary embolism", "probability": 0.2},
                   {"diagnosis": "Gastro-oesophageal reflux", "probability": 0.2}]},
        {"turn": 3, "by": "panel", "moved_by": ["F3", "F4"], "kept": ["Aortic dissection"],
         "items": [{"diagnosis": "Acute coronary syndrome", "probability": 0.55},
                   {"diagnosis": "pulmonary embolism", "probability": 0.1},
                   {"diagnosis": "Aortic dissection", "probability": 0.05}]},
    ],
    "tests_ordered": [{"turn": 2, "name": "Troponin", "available": True, "price": 38.0, "canonical": "Troponin I",
                       "matched": True}],
    "cost": {"entries": [
        {"turn": 1, "kind": "visit", "name": "visit", "canonical": "visit", "price": 300.0, "matched": True},
        {"turn": 2, "kind": "test", "name": "Troponin", "canonical": "Troponin I", "price": 38.0, "matched": True},
        {"turn": 2, "kind": "test", "name": "Zeta potential scan", "canonical": None, "price": 150.0,
         "matched": False},
    ], "total": 488.0, "visits": 1, "tests_total": 188.0, "unmatched": ["Zeta potential scan"]},
    "blocked": [{"turn": 3, "test": "CT abdomen with contrast", "reasons": [
        {"rule": "iodinated-contrast-kidney", "severity": "block",
         "reason": "CT abdomen with contrast uses iodinated contrast, but kidney function is severely reduced: "
                   "eGFR 12 mL/min (below 30).",
         "sources": ["Observation/egfr/_history/2", "Condition/esrd/_history/3"]}]}],
    "approvals": [
        {"turn": 4, "action": "test", "text": "Coronary angiography", "reasons": ["invasive", "price $1,200"],
         "decision": "edit", "edited": "CT coronary angiography", "note": None},
        {"turn": 5, "action": "diagnose", "text": "Unstable angina", "reasons": ["final diagnosis"],
         "decision": "reject", "edited": None, "note": "troponin is up: this is an NSTEMI"},
    ],
    "panel": [
        {"turn": 2, "role": "hypothesis", "member": 0, "ok": True, "error": None, "reply": "{}",
         "output": {"differential": [{"diagnosis": "Acute coronary syndrome", "probability": 0.5, "evidence": ["F3"]}],
                    "moved_by": ["F3"], "next_step": "test", "question": ""}},
        {"turn": 2, "role": "test_chooser", "member": 0, "ok": True, "error": None, "reply": "{}",
         "output": {"tests": [{"name": "Troponin", "reason": "myocardial injury"}, {"name": "D-dimer", "reason": ""}],
                    "record_question": "", "image_request": ""}},
        {"turn": 2, "role": "challenger", "member": 0, "ok": False, "output": None, "reply": "not json",
         "error": "unparseable: no JSON object in the reply"},
        {"turn": 2, "role": "stewardship", "member": 0, "ok": True, "error": None, "reply": "{}",
         "output": {"vetoes": ["D-dimer"], "substitutions": [{"instead_of": "CT chest", "use": "Chest X-ray"}],
                    "note": "cheap first"}},
        {"turn": 2, "role": "checklist", "member": 0, "ok": True, "error": None, "reply": "{}",
         "output": {"problems": ["no ECG yet"], "ready_to_diagnose": False}},
    ],
    "consensus": [
        {"turn": 2, "action": "test", "text": "Troponin",
         "rationale": "hypothesis: next step test; test_chooser: Troponin ($38); stewardship: no veto",
         "differential": [["Acute coronary syndrome", 0.5]], "moved_by": ["F3"], "used_roles": ["hypothesis#0"],
         "failed_roles": ["challenger#0: unparseable: no JSON object in the reply"],
         "skipped": [{"name": "D-dimer", "reason": "vetoed by stewardship"}], "priced": []},
    ],
    "outcome": {"final_diagnosis": "NSTEMI", "ended_by": "clinician", "leak": False},
    "verdict": {"correct": True, "method": "model"},
    "totals": {"turns": 5, "questions": 1, "tests": 1, "input_tokens": 10, "output_tokens": 5, "model_seconds": 0.2,
               "per_role": {}},
    "wall_seconds": 1.0,
}


def panel_transcript() -> dict[str, Any]:
    """A fresh copy (tests may edit it)."""
    return copy.deepcopy(_PANEL_TRANSCRIPT)


def old_transcript() -> dict[str, Any]:
    """The same consultation as a transcript written before provenance, cost and the panel existed."""
    t = panel_transcript()
    for key in ("doctor", "cost", "blocked", "approvals", "panel", "consensus"):
        del t[key]
    for finding in t["findings"]:
        del finding["id"]
    for snapshot in t["differentials"]:
        for key in ("by", "moved_by", "kept"):
            del snapshot[key]
    return t
