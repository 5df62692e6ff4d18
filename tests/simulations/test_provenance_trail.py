"""The transcript's provenance trail, cost, blocked orders, approvals and panel deliberation in Markdown: known
inputs give known lines, every cited finding exists, and an older transcript shows none of it."""

from __future__ import annotations

from simulations.trail import cost_of, has_provenance, panel_turns, trail_steps, unknown_finding_ids
from simulations.transcript import render_markdown
from tests.simulations.panel_transcript import ECG_SHA, old_transcript, panel_transcript

NEW_SECTIONS = ("## Provenance trail", "## Panel deliberation", "## Cost", "## Blocked orders",
                "## Clinician approvals", "**Doctor:**")


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:end if end >= 0 else None]


def test_trail_lines_name_changes_kept_items_and_the_findings_behind_them() -> None:
    trail = _section(render_markdown(panel_transcript()), "## Provenance trail")
    assert ("- Turn 1 (panel, first differential): Acute coronary syndrome 40%, Pulmonary embolism 20%, "
            "Gastro-oesophageal reflux 20% — moved by F1 (record: End stage renal disease; eGFR 12 mL/min), "
            "F2 (image:ecg1: ST elevation in V2-V4)") in trail
    # names are matched ignoring case: "pulmonary embolism" is the same item, down from 20%
    assert ("- Turn 3 (panel): Acute coronary syndrome 55% (↑ from 40%), pulmonary embolism 10% (↓ from 20%), "
            "Aortic dissection 5% (new; kept: can't-miss); dropped Gastro-oesophageal reflux "
            "(was 20%) — moved by F3 (patient: Central, crushing, into my left arm.), "
            "F4 (test:Troponin: Troponin I 2.1 ng/mL (elevated))") in trail


def test_findings_are_listed_with_id_source_and_refs() -> None:
    trail = _section(render_markdown(panel_transcript()), "## Provenance trail")
    assert ("- **F1** (turn 0, record): End stage renal disease; eGFR 12 mL/min — refs: "
            "`Condition/esrd/_history/3`, `Observation/egfr/_history/2`") in trail
    assert f"- **F2** (turn 0, image:ecg1): ST elevation in V2-V4 — refs: `image:ecg1@sha256:{ECG_SHA}`" in trail
    assert "- **F4** (turn 2, test:Troponin): Troponin I 2.1 ng/mL (elevated)\n" in trail


def test_every_cited_finding_exists_and_a_dangling_one_is_flagged() -> None:
    t = panel_transcript()
    assert unknown_finding_ids(t) == []
    t["differentials"][1]["moved_by"].append("F9")
    t["consensus"][0]["moved_by"] = ["F3", "F12"]
    assert unknown_finding_ids(t) == ["F9", "F12"]
    assert "F9 (no such finding)" in render_markdown(t)


def test_unchanged_items_and_a_differential_nobody_explained() -> None:
    t = panel_transcript()
    t["differentials"][1]["items"][0]["probability"] = 0.404  # rounds to the same 40%
    t["differentials"][1]["moved_by"] = []
    step = trail_steps(t)[1]
    assert (step.items[0].change, step.items[1].change, step.items[2].change) == ("same", "down", "new")
    line = next(line for line in render_markdown(t).splitlines() if line.startswith("- Turn 3"))
    assert line.startswith("- Turn 3 (panel): Acute coronary syndrome 40%, pulmonary")
    assert line.endswith("— no finding named as the cause")


def test_cost_section_recomputes_totals_and_lists_unmatched_tests() -> None:
    t = panel_transcript()
    t["cost"]["total"] = 1.0  # a hand-edited total is not trusted
    cost = _section(render_markdown(t), "## Cost")
    assert "Total **$488**: 1 visit (question round), tests $188, budget $1,500." in cost
    assert "| 2 | test | Zeta potential scan | - | $150 | no (default price) |" in cost
    assert "| 2 | test | Troponin | Troponin I | $38 | yes |" in cost
    assert "Unmatched tests (charged the default price): Zeta potential scan" in cost
    assert cost_of({"cost": {"entries": []}}) is not None and cost_of({}) is None


def test_blocked_orders_approvals_and_the_panel() -> None:
    text = render_markdown(panel_transcript())
    blocked = _section(text, "## Blocked orders")
    assert ("- Turn 3: CT abdomen with contrast refused: CT abdomen with contrast uses iodinated contrast, but kidney "
            "function is severely reduced: eGFR 12 mL/min (below 30). (block) [sources: Observation/egfr/_history/2, "
            "Condition/esrd/_history/3]") in blocked
    approvals = _section(text, "## Clinician approvals")
    assert '| 4 | test | Coronary angiography | invasive; price $1,200 | edited to "CT coronary angiography" |' \
        in approvals
    assert "| 5 | diagnose | Unstable angina | final diagnosis | rejected (note: troponin is up: this is an NSTEMI) |" \
        in approvals
    panel = _section(text, "## Panel deliberation")
    assert "- hypothesis#0: ok — Acute coronary syndrome 50%; next: test; moved by F3" in panel
    assert "- challenger#0: FAILED — failed: unparseable: no JSON object in the reply" in panel
    assert "- stewardship#0: ok — vetoes: D-dimer; substitutions: CT chest → Chest X-ray; cheap first" in panel
    assert "- checklist#0: ok — not ready to diagnose; problems: no ECG yet" in panel
    assert "- **consensus → test: Troponin** (hypothesis: next step test;" in panel
    assert "- skipped: D-dimer (vetoed by stewardship)" in panel
    assert "- **Doctor:** panel (budgeted; budget $1,500; approvals: expensive)" in text


def test_an_older_transcript_shows_nothing_new() -> None:
    t = old_transcript()
    assert not has_provenance(t)
    text = render_markdown(t)
    assert not [s for s in NEW_SECTIONS if s in text]
    assert "## Last differential" in text and "- Acute coronary syndrome: 55%" in text


def test_model_text_cannot_become_markdown_structure() -> None:
    t = panel_transcript()
    t["findings"][2]["text"] = "<img src=x onerror=alert(1)>\n## Injected heading"
    t["approvals"][0]["text"] = "a | b"
    text = render_markdown(t)
    assert "<img" not in text and "\n## Injected heading" not in text
    assert "| a \\| b |" in text


def test_odd_shapes_do_not_break_the_page() -> None:
    t = panel_transcript()
    t.update({"cost": {"entries": "x"}, "blocked": [1, {"turn": 2}], "approvals": [None],
              "panel": [{"turn": 1, "ok": True, "output": "not a dict"}], "consensus": [{"turn": 1}]})
    # (the Markdown page's "Last differential" has always trusted the last snapshot: the odd one goes before it)
    t["differentials"].insert(1, {"turn": 2, "items": [{"diagnosis": "X", "probability": "high"}], "moved_by": [3]})
    text = render_markdown(t)
    assert "Total **$0**: 0 visits (question rounds)" in text
    assert "- Turn 2: ? refused: no reason recorded" in text
    assert "- ?#0: FAILED — failed: no usable output" in text
    assert "X ? (new)" in text and "moved by 3 (no such finding)" in text


def test_panel_roles_are_listed_in_working_order_whatever_order_they_finished() -> None:
    t = panel_transcript()
    t["panel"].reverse()  # the parallel calls finish in any order
    t["panel"].append({**t["panel"][-1], "member": 1})  # a second ensemble member's hypothesis
    labels = [r.label for r in panel_turns(t)[0].roles]
    assert labels == ["hypothesis#0", "hypothesis#1", "test_chooser#0", "challenger#0", "stewardship#0",
                      "checklist#0"]
