"""The HTML transcript page's provenance trail, cost, blocked orders, approvals and panel deliberation: what is shown,
that cited findings link to rows that exist, escaping, and an older transcript without any of it."""

from __future__ import annotations

import re

from simulations.bench.transcript_html import render_transcript_html
from tests.simulations.panel_transcript import ECG_SHA, old_transcript, panel_transcript

NEW_SECTIONS = ("Provenance trail", "Panel deliberation", "<h2>Cost", "Blocked orders", "Clinician approvals",
                "<dt>Doctor</dt>")


def test_trail_links_each_cited_finding_to_its_row() -> None:
    page = render_transcript_html(panel_transcript())
    trail = page[page.index("<h2>Provenance trail</h2>"):page.index("<h2>Panel deliberation</h2>")]
    links = re.findall(r'<a href="#finding-(F\d+)">', trail)
    assert links == ["F1", "F2", "F3", "F4"]
    rows = set(re.findall(r'<tr id="finding-(F\d+)">', page))
    assert set(links) <= rows  # every link lands on a finding row that exists
    assert '<span class="up">Acute coronary syndrome 55% (↑ from 40%)</span>' in trail
    assert '<span class="down">pulmonary embolism 10% (↓ from 20%)</span>' in trail
    assert "<span class=\"kept\">Aortic dissection 5% (new; kept: can&#x27;t-miss)</span>" in trail
    assert "dropped Gastro-oesophageal reflux (was 20%)" in trail
    assert '<a href="#finding-F4">F4 (test:Troponin: Troponin I 2.1 ng/mL (elevated))</a>' in trail


def test_findings_table_shows_ids_sources_and_refs() -> None:
    page = render_transcript_html(panel_transcript())
    assert ('<tr id="finding-F1"><td>F1</td><td>0</td><td>record</td><td>End stage renal disease; eGFR 12 mL/min</td>'
            '<td><code class="ref">Condition/esrd/_history/3</code><br><code class="ref">Observation/egfr/_history/2'
            "</code></td></tr>") in page
    assert f'<code class="ref">image:ecg1@sha256:{ECG_SHA}</code>' in page


def test_a_dangling_citation_is_not_a_link() -> None:
    t = panel_transcript()
    t["differentials"][1]["moved_by"] = ["F7"]
    page = render_transcript_html(t)
    assert "F7 (no such finding)" in page and 'href="#finding-F7"' not in page


def test_cost_safety_approvals_and_panel_sections() -> None:
    page = render_transcript_html(panel_transcript())
    assert "<p>Total <b>$488</b>: 1 visit (question round), tests $188, budget $1,500.</p>" in page
    assert ("<tr><td>2</td><td>test</td><td>Zeta potential scan</td><td>-</td><td>$150</td>"
            "<td>no (default price)</td></tr>") in page
    assert "[sources: Observation/egfr/_history/2, Condition/esrd/_history/3]</li>" in page
    assert "<td>edited to &quot;CT coronary angiography&quot;</td>" in page
    assert '<td>challenger#0</td><td class="failed">failed</td>' in page
    assert "<p><b>Consensus: test: Troponin</b>" in page
    assert "<dt>Doctor</dt><dd>panel (budgeted; budget $1,500; approvals: expensive)</dd>" in page
    assert '<div class="turn safety">' in page


def test_everything_from_the_transcript_is_escaped() -> None:
    t = panel_transcript()
    t["findings"][3]["text"] = "<script>alert(1)</script>"
    t["findings"][3]["id"] = 'F4"><script>'
    t["differentials"][1]["moved_by"] = ['F4"><script>']
    t["panel"][0]["output"]["question"] = "<b>x</b>"
    t["blocked"][0]["reasons"][0]["reason"] = "<iframe>"
    page = render_transcript_html(t)
    assert "<script" not in page.lower() and "<iframe" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_an_older_transcript_page_is_as_before() -> None:
    page = render_transcript_html(old_transcript())
    assert not [s for s in NEW_SECTIONS if s in page]
    assert "<table><tr><th>turn</th><th>source</th><th>finding</th></tr>" in page  # the old findings table
    assert 'id="finding-' not in page
