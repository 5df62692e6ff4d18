"""Which cases a benchmark runs: dataset names resolved to case files, and the ``--cases`` / ``--limit`` selection.

Names are upstream's datasets (``medqa``, ``medqa_ext``, ``nejm``, ``nejm_ext``, ``mimiciv``), found as
``agentclinic_<name>.jsonl`` files in a data directory the user points at; ``demo`` is the built-in cases and needs
nothing; anything else is read as a path to a case file. MIMIC-IV cases need PhysioNet credentials, so they are
never shipped: the user brings the file.

Errors::

    DatasetError
    ├── DatasetNotFoundError   a name or path that resolves to no file (says where it looked and how to fix it)
    └── CaseSelectionError     a --cases entry that names no case of the dataset
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from simulations.bench.config import DatasetRef
from simulations.cases import DEMO_DATASET, Case, demo_cases, load_cases

DATASET_FILES: dict[str, str] = {
    "medqa": "agentclinic_medqa.jsonl",
    "medqa_ext": "agentclinic_medqa_extended.jsonl",
    "nejm": "agentclinic_nejm.jsonl",
    "nejm_ext": "agentclinic_nejm_extended.jsonl",
    "mimiciv": "agentclinic_mimiciv.jsonl",
}
DATASET_NAMES: tuple[str, ...] = (*DATASET_FILES, DEMO_DATASET)
_MIMIC_NOTE = (
    " AgentClinic-MIMIC-IV is derived from credentialed PhysioNet data: request the file from the AgentClinic "
    "authors with proof of MIMIC-IV access; it is never shipped."
)


class DatasetError(Exception):
    """Base of the errors raised while choosing a benchmark's cases."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset name or path that resolves to no case file."""


class CaseSelectionError(DatasetError, LookupError):
    """A case index or id in ``--cases`` that the dataset does not have."""


@dataclass(frozen=True)
class Dataset:
    """A resolved dataset: its cases and what pins them (the file and its hash)."""

    name: str
    path: Path | None
    sha256: str | None
    cases: list[Case]

    def ref(self) -> DatasetRef:
        return DatasetRef(name=self.name, path=str(self.path) if self.path else None, sha256=self.sha256,
                          cases=len(self.cases))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_dataset(name_or_path: str, data_dir: Path | None = None, *, skip_bad: bool = False) -> Dataset:
    """Load the dataset a name or path denotes; the error says where it looked and how to point clinicflow at it."""
    key = name_or_path.strip()
    if key.lower() == DEMO_DATASET:
        return Dataset(DEMO_DATASET, None, None, demo_cases())
    lowered = key.lower()
    if lowered in DATASET_FILES:
        if data_dir is None:
            raise DatasetNotFoundError(
                f"dataset {lowered!r} needs its case file {DATASET_FILES[lowered]}: pass --data-dir DIR (or set "
                "CLINICFLOW_BENCH__DATA_DIR / [bench] data_dir) to the folder that holds the AgentClinic files."
                + (_MIMIC_NOTE if lowered == "mimiciv" else "")
            )
        path = Path(data_dir).expanduser() / DATASET_FILES[lowered]
        if not path.is_file():
            raise DatasetNotFoundError(
                f"dataset {lowered!r}: no file {path} (expected {DATASET_FILES[lowered]} in --data-dir "
                f"{data_dir})." + (_MIMIC_NOTE if lowered == "mimiciv" else "")
            )
        return _from_file(path, lowered, skip_bad=skip_bad)
    path = Path(key).expanduser()
    if path.is_file():
        return _from_file(path, None, skip_bad=skip_bad)
    raise DatasetNotFoundError(
        f"{key!r} is neither a dataset name ({', '.join(DATASET_NAMES)}) nor an existing case file"
    )


def _from_file(path: Path, name: str | None, *, skip_bad: bool) -> Dataset:
    loaded = load_cases(path, skip_bad=skip_bad, dataset=name)
    dataset = name or (loaded.cases[0].dataset if loaded.cases else path.stem)
    return Dataset(dataset, path.resolve(), file_sha256(path), loaded.cases)


def select_cases(cases: Sequence[Case], *, pick: Sequence[str] = (), limit: int | None = None) -> list[Case]:
    """``pick`` entries are 0-based indexes (``3``), case ids (``medqa:0003``) or demo slugs; then the first ``limit``.

    Order follows ``pick`` when given (so ``--cases 9,3`` runs 9 first), else the file.
    """
    chosen: list[Case] = list(cases)
    if pick:
        by_id = {c.id: c for c in cases}
        by_slug = {c.slug: c for c in cases if c.slug}
        chosen = []
        for entry in pick:
            entry = entry.strip()
            if entry.isdigit():
                index = int(entry)
                if index >= len(cases):
                    raise CaseSelectionError(f"case index {index} is out of range: the dataset has {len(cases)} "
                                             f"cases (0..{len(cases) - 1})")
                case = cases[index]
            else:
                found = by_id.get(entry) or by_slug.get(entry.split(":", 1)[-1])
                if found is None:
                    raise CaseSelectionError(f"no case {entry!r} in the dataset (ids look like {cases[0].id!r})"
                                             if cases else f"no case {entry!r}: the dataset is empty")
                case = found
            if case not in chosen:
                chosen.append(case)
    if limit is not None:
        if limit < 1:
            raise CaseSelectionError(f"--limit must be at least 1, not {limit}")
        chosen = chosen[:limit]
    return chosen


def parse_case_list(text: str | None) -> list[str]:
    """``"3,7, 9"`` -> ["3", "7", "9"]; ranges ``"0-4"`` expand to each index."""
    if not text:
        return []
    picked: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low, sep, high = part.partition("-")
        if sep and low.isdigit() and high.isdigit():
            if int(high) < int(low):
                raise CaseSelectionError(f"case range {part!r} runs backwards")
            picked.extend(str(i) for i in range(int(low), int(high) + 1))
        else:
            picked.append(part)
    return picked
