"""Case files: AgentClinic MedQA and NEJM JSON lines (and our demo cases) read into validated ``Case`` records.

The upstream files are LLM-written and loosely shaped (strings that are sometimes lists or dicts, extra keys, no
trailing newline), so the loader coerces what has one obvious reading and rejects the rest with the file, the 1-based
line number and the field that failed.

Errors::

    CaseError                  base of everything this module raises on purpose
    ├── CaseFormatError        a line that is not a usable case (bad JSON, missing field, uncoercible type)
    └── CaseNotFoundError      a case index or demo name that does not exist
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from simulations.findings import render_value
from simulations.textnorm import fold

NEJM_OBJECTIVE = "What is the most likely diagnosis?"
DEMO_DATASET = "demo"
_BOM = b"\xef\xbb\xbf"


class CaseError(Exception):
    """Base class for case loading errors."""


@dataclass(frozen=True)
class CaseProblem:
    """Why one line of a case file could not be loaded."""

    path: str
    line: int
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}, line {self.line}"
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


class CaseFormatError(CaseError, ValueError):
    """A line that is not a usable case; ``problem`` says where and why."""

    def __init__(self, problem: CaseProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class CaseNotFoundError(CaseError, LookupError):
    """A case index out of range or an unknown demo case name."""


class Case(BaseModel):
    """One simulated-clinic case; which actor may see which field is fixed by the protocol (see the field notes)."""

    model_config = ConfigDict(frozen=True)

    id: str  # stable: "<dataset>:<0-based record index, 4 digits>" or "<dataset>:<slug>"
    dataset: str
    index: int  # 0-based among the file's non-blank lines, so stray blank lines never renumber cases
    source_format: Literal["medqa", "nejm"]
    objective: str  # the only thing the doctor is told
    patient_info: str  # the patient actor's script
    findings: dict[str, Any] | str  # the measurement actor's data (MedQA: exam with Test_Results under "tests")
    correct_diagnosis: str  # judge only
    options: list[str] = []  # NEJM answer options, judge only
    # NEJM: the case's figure (fetched through the image store, or found by name in an image folder: see
    # simulations.case_images) and its image categories (NEJM_Ext "type"), which pick the image reader's prompt.
    image_url: str | None = None
    image_types: list[str] = []
    slug: str | None = None
    # The patient's id on a FHIR server when the case has a health record (``fhir_patient_id`` in the file); the
    # demo cases' records come from ``simulations.demo_records`` and ``clinicflow fhir serve``.
    patient_id: str | None = None
    raw: dict[str, Any]


@dataclass
class CaseLoad:
    """The cases of one file, and the lines skipped (only ever non-empty with ``skip_bad=True``)."""

    path: str
    cases: list[Case] = field(default_factory=list)
    problems: list[CaseProblem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.cases)


class _FieldError(Exception):
    def __init__(self, field_name: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field_name = field_name
        self.reason = reason


def dataset_name(path: str | Path) -> str:
    """The dataset part of case ids, from the file stem: ``agentclinic_medqa.jsonl`` -> ``medqa``."""
    stem = Path(path).name.split(".")[0].lower()
    return stem.removeprefix("agentclinic_") or stem


def slugify(text: str) -> str:
    return fold(text).replace(" ", "-")


def load_cases(path: str | Path, *, skip_bad: bool = False, dataset: str | None = None) -> CaseLoad:
    """Read every case of a JSON-lines file, detecting MedQA or NEJM per line.

    Raises ``CaseFormatError`` on the first bad line unless ``skip_bad``, which collects it in ``problems``.
    """
    path = Path(path)
    name = dataset or dataset_name(path)
    load = CaseLoad(path=str(path))
    seen: set[str] = set()
    record_index = 0
    for line_no, raw_line in enumerate(path.read_bytes().split(b"\n"), start=1):
        # A BOM may start the file (or a file concatenated onto it); CRLF leaves a trailing \r.
        raw_line = raw_line.rstrip(b"\r").removeprefix(_BOM)
        if not raw_line.strip():
            continue
        index = record_index
        record_index += 1
        try:
            case = _parse_line(raw_line, dataset=name, index=index)
            if case.id in seen:
                raise _FieldError("slug" if case.slug else None, f"duplicate case id {case.id!r}")
            seen.add(case.id)
        except _FieldError as exc:
            problem = CaseProblem(str(path), line_no, exc.field_name, exc.reason)
            if not skip_bad:
                raise CaseFormatError(problem) from None
            load.problems.append(problem)
            continue
        load.cases.append(case)
    return load


def load_case(path: str | Path, index: int, *, skip_bad: bool = False) -> Case:
    """The case at 0-based position ``index`` among the file's loaded cases."""
    cases = load_cases(path, skip_bad=skip_bad).cases
    if not 0 <= index < len(cases):
        span = f"valid indexes are 0..{len(cases) - 1}" if cases else "it has none"
        raise CaseNotFoundError(f"case index {index} is out of range: {path} has {len(cases)} cases ({span})")
    return cases[index]


def demo_cases() -> list[Case]:
    """The built-in demo cases (original vignettes shipped as ``demo_cases.jsonl``), in file order.

    They let a consultation run with no dataset on disk; each line carries a ``slug``, so ids are ``demo:<slug>``.
    """
    return list(_demo_cases())


def get_demo_case(name: str) -> Case:
    """The demo case named ``demo:<slug>`` or just ``<slug>``."""
    slug = name.strip().removeprefix(f"{DEMO_DATASET}:")
    for case in _demo_cases():
        if case.slug == slug:
            return case
    valid = ", ".join(f"{DEMO_DATASET}:{case.slug}" for case in _demo_cases())
    raise CaseNotFoundError(f"no demo case named {name!r}; valid names: {valid}")


@cache
def _demo_cases() -> tuple[Case, ...]:
    with as_file(files("simulations").joinpath("demo_cases.jsonl")) as path:
        return tuple(load_cases(path, dataset=DEMO_DATASET).cases)


def _parse_line(raw_line: bytes, *, dataset: str, index: int) -> Case:
    try:
        text = raw_line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _FieldError(None, f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _FieldError(None, f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(record, dict):
        raise _FieldError(None, f"expected a JSON object, got {_kind(record)}")
    if "OSCE_Examination" in record:
        return _parse_medqa(record, dataset=dataset, index=index)
    if {"patient_info", "physical_exams", "answers"} & record.keys():
        return _parse_nejm(record, dataset=dataset, index=index)
    raise _FieldError(
        None,
        "unrecognised case schema: expected OSCE_Examination (MedQA) or patient_info/physical_exams/answers (NEJM)",
    )


def _parse_medqa(record: dict[str, Any], *, dataset: str, index: int) -> Case:
    osce = record["OSCE_Examination"]
    if not isinstance(osce, dict):
        raise _FieldError("OSCE_Examination", f"expected an object, got {_kind(osce)}")
    prefix = "OSCE_Examination."
    objective = _required_text(osce, "Objective_for_Doctor", prefix)
    diagnosis = _required_text(osce, "Correct_Diagnosis", prefix)
    actor = _require(osce, "Patient_Actor", prefix)
    if isinstance(actor, dict):
        patient_info = "\n".join(f"{_label(k)}: {render_value(v)}" for k, v in actor.items() if v not in (None, ""))
    elif isinstance(actor, str | list):
        patient_info = render_value(actor)
    else:
        raise _FieldError(prefix + "Patient_Actor", f"expected an object or text, got {_kind(actor)}")
    if not patient_info.strip():
        raise _FieldError(prefix + "Patient_Actor", "is empty")
    exam_field = "Physical_Examination_Findings"
    exam = _as_section(_require(osce, exam_field, prefix), prefix + exam_field)
    tests = osce.get("Test_Results")
    # As upstream: the measurement actor sees the exam with the test results merged in under "tests".
    findings = {**exam, "tests": _as_section(tests, prefix + "Test_Results") if tests is not None else {}}
    slug = _slug_of(record, osce)
    return Case(
        id=f"{dataset}:{slug}" if slug else f"{dataset}:{index:04d}",
        dataset=dataset,
        index=index,
        source_format="medqa",
        objective=objective,
        patient_info=patient_info,
        findings=findings,
        correct_diagnosis=diagnosis,
        slug=slug,
        patient_id=_patient_id_of(record),
        raw=record,
    )


def _parse_nejm(record: dict[str, Any], *, dataset: str, index: int) -> Case:
    patient_info = _required_text(record, "patient_info", "", allow_dict=True)
    exams = _require(record, "physical_exams", "")
    if isinstance(exams, dict):
        findings: dict[str, Any] | str = exams
    elif isinstance(exams, str | list):
        findings = render_value(exams)
    else:
        raise _FieldError("physical_exams", f"expected text, got {_kind(exams)}")
    options, diagnosis = _nejm_answers(_require(record, "answers", ""))
    image_url = record.get("image_url")
    if isinstance(image_url, list):
        image_url = image_url[0] if image_url else None
    if image_url is not None and not isinstance(image_url, str):
        raise _FieldError("image_url", f"expected text, got {_kind(image_url)}")
    types = record.get("type") or []
    image_types = [types] if isinstance(types, str) else [str(t) for t in types] if isinstance(types, list) else None
    if image_types is None:
        raise _FieldError("type", f"expected a list of text, got {_kind(types)}")
    slug = _slug_of(record, {})
    return Case(
        id=f"{dataset}:{slug}" if slug else f"{dataset}:{index:04d}",
        dataset=dataset,
        index=index,
        source_format="nejm",
        objective=NEJM_OBJECTIVE,
        patient_info=patient_info,
        findings=findings,
        correct_diagnosis=diagnosis,
        options=options,
        image_url=image_url or None,
        image_types=image_types,
        slug=slug,
        patient_id=_patient_id_of(record),
        raw=record,
    )


def _nejm_answers(answers: Any) -> tuple[list[str], str]:
    if isinstance(answers, dict):
        answers = list(answers.values())
    if not isinstance(answers, list) or not answers:
        raise _FieldError("answers", f"expected a non-empty list of options, got {_kind(answers)}")
    options: list[str] = []
    correct: list[str] = []
    for i, option in enumerate(answers):
        if not isinstance(option, dict) or not isinstance(option.get("text"), str) or not option["text"].strip():
            raise _FieldError(f"answers[{i}]", 'expected {"text": str, "correct": bool}')
        flag = option.get("correct", False)
        if isinstance(flag, str) and flag.strip().lower() in {"true", "false"}:
            flag = flag.strip().lower() == "true"
        if not isinstance(flag, bool | int) or flag not in (0, 1):
            raise _FieldError(f"answers[{i}].correct", f"expected true or false, got {flag!r}")
        options.append(option["text"].strip())
        if flag:
            correct.append(option["text"].strip())
    if len(correct) != 1:
        raise _FieldError("answers", f"expected exactly one correct option, found {len(correct)}")
    return options, correct[0]


def _require(obj: dict[str, Any], key: str, prefix: str) -> Any:
    if obj.get(key) is None:
        raise _FieldError(prefix + key, "missing required field")
    return obj[key]


def _required_text(obj: dict[str, Any], key: str, prefix: str, *, allow_dict: bool = False) -> str:
    """A text field that upstream sometimes writes as a list of strings (or, where allowed, an object)."""
    value = _require(obj, key, prefix)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = "; ".join(v.strip() for v in value if v.strip())
    elif allow_dict and isinstance(value, dict):
        value = render_value(value)
    if not isinstance(value, str):
        raise _FieldError(prefix + key, f"expected text, got {_kind(value)}")
    if not value.strip():
        raise _FieldError(prefix + key, "is empty")
    return value.strip()


def _as_section(value: Any, field_name: str) -> dict[str, Any]:
    """Findings and test results are objects keyed by section; a bare text or list becomes one section."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str | list):
        return {"Findings": value} if value else {}
    raise _FieldError(field_name, f"expected an object, got {_kind(value)}")


def _patient_id_of(record: dict[str, Any]) -> str | None:
    value = record.get("fhir_patient_id")
    if value is None:
        return None
    # A FHIR id: 1-64 of [A-Za-z0-9-.]; anything else could not name a resource and may be an injection attempt.
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", value):
        raise _FieldError("fhir_patient_id", f"expected a FHIR id (letters, digits, '-', '.'), got {value!r}")
    return value


def _slug_of(record: dict[str, Any], osce: dict[str, Any]) -> str | None:
    for container in (record, osce):
        for key in ("slug", "Case_Name"):
            value = container.get(key)
            if isinstance(value, str) and slugify(value):
                return slugify(value)
    return None


def _label(key: str) -> str:
    return key.replace("_", " ").strip()


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )
