"""``write_report`` on a run directory built by hand: the numbers, the protocol header, escaping, and the HTML
report and a transcript page rendered by a real browser (Debian's headless Chromium)."""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from simulations.bench.config import DatasetRef, RunConfig, RunEnvironment
from simulations.bench.records import (
    AttemptError,
    AttemptResult,
    JudgeScore,
    RoleUsage,
    RubricScore,
    attempt_key,
    transcript_name,
)
from simulations.bench.report import write_report
from simulations.bench.rundir import NotARunError
from simulations.bench.transcript_html import render_transcript_html

RUN_ID = "demo-run-1"
SCRIPT_DX = "<script>alert('x')</script> | not a column"
CHROMIUM = Path("/usr/bin/chromium")


def _transcript(case: str, bias: str, repeat: int, diagnosis: str | None, correct: bool | None) -> dict[str, Any]:
    return {
        "version": 1, "attempt": attempt_key(case, bias, repeat), "protocol": "agentclinic", "bias": bias,
        "seed": 7, "repeat": repeat, "run_id": RUN_ID,
        "case": {"id": case, "ref": case, "dataset": "medqa", "objective": "Find the <b>cause</b> of the fever.",
                 "correct_diagnosis": "Malaria"},
        "environment": "normal-readings", "max_turns": 20,
        "models": {"reasoning": "fake:doctor", "patient": "fake:patient"},
        "dialogue": [
            {"turn": 1, "role": "doctor", "text": "Any travel abroad?", "action": "ask", "input_tokens": 100,
             "output_tokens": 10, "seconds": 0.5, "calls": 1},
            {"turn": 1, "role": "patient", "text": "I came back from Kenya </div><script>bad()</script>",
             "input_tokens": 80, "output_tokens": 12, "seconds": 0.3, "calls": 1},
            {"turn": 2, "role": "doctor", "text": "REQUEST TEST: blood smear", "action": "test"},
            {"turn": 2, "role": "measurement", "text": "RESULTS: parasites seen"},
        ],
        "findings": [{"turn": 2, "source": "test:blood smear", "text": "parasites seen"}],
        "differentials": [{"turn": 2, "items": [{"diagnosis": "Malaria", "probability": 0.8}]}],
        "tests_ordered": [{"turn": 2, "name": "blood smear", "available": True}],
        "outcome": {"final_diagnosis": diagnosis, "ended_by": "diagnosis", "leak": False},
        "verdict": None if correct is None else {"correct": correct, "method": "model", "raw": "Yes."},
        "rubric": {"scores": {"core_disease": 1}, "total": 4, "correct": True, "method": "model"},
        "totals": {"turns": 2, "questions": 1, "tests": 1, "input_tokens": 180, "output_tokens": 22,
                   "model_seconds": 0.8, "per_role": {"reasoning": {"calls": 1, "input_tokens": 100,
                                                                    "output_tokens": 10, "seconds": 0.5}}},
        "wall_seconds": 1.5,
    }


def _result(case: str, *, bias: str = "none", repeat: int = 0, status: str = "ok", correct: bool | None = None,
            diagnosis: str | None = "Malaria", transcript: bool = True, **extra: Any) -> AttemptResult:
    name = transcript_name(case, bias, repeat)
    return AttemptResult(
        run_id=RUN_ID, attempt=attempt_key(case, bias, repeat), case_id=case, dataset="medqa", bias=bias,
        repeat=repeat, seed=7, protocol="agentclinic", measurement_mode="normal-readings", status=status,
        correct=correct, final_diagnosis=diagnosis if status == "ok" else None, correct_diagnosis="Malaria",
        error=AttemptError(type="ModelUnreachable", message="connection refused\nafter 3 retries")
        if status == "error" else None,
        transcript=f"transcripts/{name}.json" if transcript else None,
        usage={"reasoning": RoleUsage(calls=2, input_tokens=100, output_tokens=20)} if status == "ok" else {},
        input_tokens=100 if status == "ok" else 0, output_tokens=20 if status == "ok" else 0, **extra,
    )


RESULTS = [
    # a first error for c1, superseded by its later ok line (only the latest counts)
    _result("c1", status="error", transcript=False),
    _result("c1", correct=True, turns=5, tests=1, cache_hits=4, cache_misses=1,
            verdict=JudgeScore(correct=True, method="model", raw="Yes.", upstream_correct=False),
            rubric=RubricScore(total=5, correct=True, method="model")),
    _result("c2", correct=False, diagnosis=SCRIPT_DX, turns=9, tests=3, leak=True, case_leak_prone=True,
            verdict=JudgeScore(correct=False, method="model", raw="No", upstream_correct=False)),
    _result("c3", status="error", transcript=False),
    _result("c4", correct=None, turns=20, verdict=JudgeScore(correct=None, method="unjudged", raw="maybe")),
    _result("c5", correct=True, turns=3, leak=True, case_leak_prone=True),
    _result("c1", bias="doctor:recency", correct=True, turns=5),
]
# judged: c1, c2, c5, c1/recency -> 3 of 4 correct; finished: 5, leaked 2; without leaks: 2 of 2


def make_run(root: Path, results: list[AttemptResult] = RESULTS, *, transcripts: bool = True) -> Path:
    run = root / "run"
    (run / "transcripts").mkdir(parents=True)
    config = RunConfig(
        protocol="agentclinic", measurement_mode="normal-readings", case_ids=["c1", "c2", "c3", "c4", "c5"],
        datasets=[DatasetRef(name="medqa", path="/data/medqa.jsonl", sha256="ab" * 32, cases=107)],
        biases=["none", "doctor:recency"], models={"reasoning": "fake:doctor", "patient": "fake:patient"},
        seed=7,
    )
    document = {"run_id": RUN_ID, "config": config.model_dump(mode="json"),
                "environment": RunEnvironment().model_dump(mode="json")}
    (run / "config.json").write_text(json.dumps(document), encoding="utf-8")
    (run / "results.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in results), encoding="utf-8")
    if transcripts:
        for r in results:
            if r.status == "ok" and r.transcript:
                t = _transcript(r.case_id, r.bias, r.repeat, r.final_diagnosis, r.correct)
                (run / r.transcript).write_text(json.dumps(t), encoding="utf-8")
                (run / r.transcript).with_suffix(".md").write_text("# transcript\n", encoding="utf-8")
        (run / "transcripts" / "c4-0.json").write_text('{"version": 1, "dialo', encoding="utf-8")  # corrupt
    return run


def test_markdown_report_names_protocol_mode_and_numbers(tmp_path: Path) -> None:
    files = write_report(make_run(tmp_path))
    text = files.markdown.read_text(encoding="utf-8")
    assert text.startswith(f"# Benchmark report: {RUN_ID}")
    assert "**Protocol: `agentclinic`**" in text and "**Measurement mode: `normal-readings`**" in text
    assert "| accuracy (yes/no judge) | 75.0% |" in text
    assert "3/4" in text
    assert "ab" * 32 in text and "/data/medqa.jsonl" in text
    assert "reasoning = fake:doctor" in text
    assert "- **Cache hit rate:** 80.0% (4 hits, 1 misses)" in text
    assert "6 recorded of 10 planned" in text  # 5 cases x 2 biases x 1 repeat; 6 distinct attempt keys
    # leaks: 2 of 5 finished attempts; without them 2 of 2 correct
    assert "- **Leaked attempts:** 2 of 5 finished" in text
    assert "- **Leak rate:** 40.0%" in text
    assert "- **Accuracy without leaked attempts:** 100.0% (2/2" in text
    assert "- **Leak-prone cases:** 2" in text
    assert "correct diagnosis itself" in text  # the explanation of what a leak is
    # per bias rows: none has 3 judged (2 correct), doctor:recency 1 of 1
    assert re.search(r"\| none \| 5 \| 3 \| 2 \| 66\.7% \|", text)
    assert re.search(r"\| doctor:recency \| 1 \| 1 \| 1 \| 100\.0% \|", text)
    # upstream's exact-"yes" rule would have scored c1 differently
    assert "scored 1 of 2 verdicts differently: it counts 0 of those 2 correct" in text
    # only c3 is still an error (c1's error was superseded); the reason is one line, and a resume retries it
    assert "- c3|none|0: ModelUnreachable: connection refused after 3 retries" in text
    assert "c1|none|0: ModelUnreachable" not in text
    assert "retried when the run is resumed" in text
    # cells are escaped: no raw HTML, the pipe cannot open a new column
    assert "<script>" not in text
    assert "&lt;script&gt;alert('x')&lt;/script&gt; \\| not a column" in text
    assert "[c1-0](transcripts/c1-0.md)" in text
    case_rows = [line for line in text.splitlines() if re.match(r"\| c\d\\\|", line)]
    assert len(case_rows) == 6
    assert files.transcripts == 4  # c1, c2, c5, c1 recency; c4's JSON is corrupt
    assert any("c4|none|0" in p and "cannot be read" in p for p in files.problems)
    assert "## Problems reading the run" in text


def test_html_report_is_self_contained_and_escaped(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    files = write_report(run)
    page = files.html.read_text(encoding="utf-8")
    assert "<script" not in page.lower()  # nothing executable, least of all from a case
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page) and "@import" not in page and "url(" not in page
    for plot in ("accuracy", "turns", "accuracy-by-turns", "tokens", "leaks"):
        assert f'<figure class="plot" id="plot-{plot}">' in page
    assert 'class="prominent"' in page and "normal-readings" in page
    transcript = (run / "transcripts" / "c1-0.html").read_text(encoding="utf-8")
    assert "<script>bad()" not in transcript and "&lt;script&gt;bad()" in transcript
    assert "&lt;b&gt;cause&lt;/b&gt;" in transcript
    assert not (run / "transcripts" / "c4-0.html").exists()
    # written by rename: no temporary files are left behind
    assert not list(run.glob(".*.tmp")) and not list((run / "transcripts").glob(".*.tmp"))


def test_report_of_a_run_without_transcripts_or_judged_attempts(tmp_path: Path) -> None:
    run = make_run(tmp_path, [_result("c3", status="error", transcript=False),
                              _result("c4", correct=None, turns=2)], transcripts=False)
    files = write_report(run)
    assert files.transcripts == 0
    assert any("c4|none|0" in p and "missing" in p for p in files.problems)
    page = files.html.read_text(encoding="utf-8")
    figures = dict(re.findall(r'<figure class="plot" id="plot-([a-z-]+)">(.*?)</figure>', page, re.DOTALL))
    # the accuracy plots say why they are empty; the others still have a finished attempt to show
    assert {name for name, svg in figures.items() if 'class="empty"' in svg} == {"accuracy", "accuracy-by-turns"}
    assert all("<svg" in svg for svg in figures.values()) and len(figures) == 5
    assert "| accuracy (yes/no judge) | n/a | n/a | 0/0 |" in files.markdown.read_text(encoding="utf-8")


def test_report_refuses_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(NotARunError):
        write_report(tmp_path)


def test_transcript_page_survives_odd_shapes() -> None:
    page = render_transcript_html({"dialogue": ["not a dict", {"role": 3}], "case": None, "totals": {"per_role": 1}})
    assert page.startswith("<!DOCTYPE html>") and "No dialogue" not in page


# ---------------- a real browser ----------------

class _DomSummary(HTMLParser):
    """Plot figures (id -> drawn SVG elements), the rows and links of table#cases, and script elements."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, dict[str, int]] = {}
        self.case_rows: list[list[str]] = []
        self.scripts = 0
        self._figure: str | None = None
        self._in_cases = False
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "figure" and "plot" in (a.get("class") or "").split():
            self._figure = a.get("id") or ""
            self.figures[self._figure] = {"svg": 0, "drawn": 0}
        elif self._figure is not None and tag == "svg":
            self.figures[self._figure]["svg"] += 1
        elif self._figure is not None and tag in ("rect", "path", "line", "circle"):
            self.figures[self._figure]["drawn"] += 1
        if tag == "table" and a.get("id") == "cases":
            self._in_cases = True
        elif self._in_cases and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.case_rows.append([])
        elif self._in_body and tag == "a" and self.case_rows:
            self.case_rows[-1].append(a.get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._figure = None
        elif tag == "table":
            self._in_cases = self._in_body = False


def _dump_dom(page: Path, profile: Path) -> str:
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="Debian chromium not installed (apt-get install chromium); .ci/run installs it")
def test_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    files = write_report(run)
    dom = _dump_dom(files.html, tmp_path / "profile")
    summary = _DomSummary()
    summary.feed(dom)
    assert set(summary.figures) == {"plot-accuracy", "plot-turns", "plot-accuracy-by-turns", "plot-tokens",
                                    "plot-leaks"}
    for figure, counts in summary.figures.items():
        assert counts["svg"] == 1, figure
        assert counts["drawn"] >= 3, figure
    assert summary.scripts == 0  # the <script> diagnosis stayed text
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in dom
    assert len(summary.case_rows) == 6  # one row per attempt (latest result per key)
    links = [href for row in summary.case_rows for href in row]
    assert sorted(links) == ["transcripts/c1-0.html", "transcripts/c1-doctor_recency-0.html",
                             "transcripts/c2-0.html", "transcripts/c5-0.html"]
    for href in links:
        assert (run / href).is_file()

    transcript_dom = _dump_dom(run / "transcripts" / "c1-0.html", tmp_path / "profile2")
    page = _DomSummary()
    page.feed(transcript_dom)
    assert page.scripts == 0
    assert "Any travel abroad?" in transcript_dom and "REQUEST TEST: blood smear" in transcript_dom
    assert "&lt;script&gt;bad()&lt;/script&gt;" in transcript_dom
    assert transcript_dom.count('class="turn ') == 4
