"""Dataset names resolve to case files the user points at; --cases and --limit pick among them."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulations.bench.datasets import (
    CaseSelectionError,
    DatasetNotFoundError,
    file_sha256,
    parse_case_list,
    resolve_dataset,
    select_cases,
)
from simulations.cases import demo_cases

AGENTCLINIC = Path(__file__).resolve().parents[4] / "shared" / "data" / "agentclinic"


def test_demo_needs_nothing() -> None:
    dataset = resolve_dataset("demo")
    assert dataset.name == "demo" and dataset.path is None and len(dataset.cases) == len(demo_cases())
    assert dataset.ref().cases == len(demo_cases())


def test_a_named_dataset_is_found_in_the_data_dir(tmp_path: Path, write_lines, medqa_record) -> None:
    write_lines(tmp_path / "agentclinic_medqa.jsonl", [medqa_record(), medqa_record()])
    dataset = resolve_dataset("MedQA", tmp_path)
    assert dataset.name == "medqa" and [c.id for c in dataset.cases] == ["medqa:0000", "medqa:0001"]
    assert dataset.sha256 == file_sha256(tmp_path / "agentclinic_medqa.jsonl")


def test_a_missing_dataset_says_where_it_looked_and_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="--data-dir"):
        resolve_dataset("medqa_ext")
    with pytest.raises(DatasetNotFoundError) as info:
        resolve_dataset("mimiciv", tmp_path)
    assert "agentclinic_mimiciv.jsonl" in str(info.value) and "PhysioNet" in str(info.value)
    with pytest.raises(DatasetNotFoundError, match="neither a dataset name"):
        resolve_dataset(str(tmp_path / "nope.jsonl"))


def test_a_file_path_names_its_own_dataset(tmp_path: Path, write_lines, nejm_record) -> None:
    path = write_lines(tmp_path / "agentclinic_nejm_extended.jsonl", [nejm_record()], trailing=False)
    dataset = resolve_dataset(str(path))
    assert dataset.name == "nejm_extended" and dataset.cases[0].id == "nejm_extended:0000"


def test_case_selection_by_index_range_id_and_limit() -> None:
    cases = demo_cases()
    assert parse_case_list("3, 1,0-1") == ["3", "1", "0", "1"]
    picked = select_cases(cases, pick=parse_case_list("2,0,0"))
    assert [c.id for c in picked] == [cases[2].id, cases[0].id]
    assert select_cases(cases, pick=[cases[1].id])[0] is cases[1]
    assert select_cases(cases, pick=[cases[1].slug or ""])[0] is cases[1]
    assert len(select_cases(cases, limit=2)) == 2
    with pytest.raises(CaseSelectionError, match="out of range"):
        select_cases(cases, pick=["99"])
    with pytest.raises(CaseSelectionError, match="no case"):
        select_cases(cases, pick=["demo:no-such-case"])


@pytest.mark.skipif(not AGENTCLINIC.is_dir(), reason="../shared/data/agentclinic is not present on this machine")
def test_the_agentclinic_files_resolve_with_their_published_hashes() -> None:
    medqa = resolve_dataset("medqa", AGENTCLINIC)
    assert len(medqa.cases) == 107
    assert medqa.sha256 == "d91038a2984f21bb1d43edd88c7958d090ef42ba80f5be487b22b903bf3a35ea"
    assert len(resolve_dataset("nejm", AGENTCLINIC).cases) == 15
