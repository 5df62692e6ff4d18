"""Fee-table matching: aliases, the conservative fuzzy rule, defaults, order splitting and table invariants."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

import pytest

from agents.panel import DEFAULT_TEST_PRICE, FeeTable, lookup, lookup_order

TABLE = FeeTable.default()
MEDQA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "agentclinic" / "agentclinic_medqa.jsonl"


def _canonical(name: str) -> str | None:
    return lookup(name).canonical


@pytest.mark.parametrize(
    "names",
    [
        ["CBC", "complete blood count", "Complete_Blood_Count", "full blood count", "cbc with differential"],
        ["Chest_X-ray", "CXR", "chest radiograph", "chest x ray", "X-ray chest"],
        ["EKG", "ECG", "electrocardiogram", "12-lead ECG"],
        ["MRI brain", "Brain_MRI", "MRI of the brain", "magnetic resonance imaging brain"],
        ["TSH", "serum TSH level", "thyroid stimulating hormone"],
        ["haemoglobin A1c", "HbA1c", "hemoglobin a1c"],
    ],
)
def test_aliases_reach_one_canonical(names: list[str]) -> None:
    found = {name: _canonical(name) for name in names}
    assert None not in found.values(), found
    assert len(set(found.values())) == 1, found


def test_contrast_wording_selects_the_contrast_study() -> None:
    plain, enhanced = lookup("CT abdomen"), lookup("CT abdomen with contrast")
    assert plain.canonical != enhanced.canonical
    assert plain.uses_contrast is None and enhanced.uses_contrast == "iodinated"
    assert lookup("CT abdomen w/o contrast").canonical == plain.canonical
    assert lookup("non-contrast CT abdomen").canonical == plain.canonical
    assert lookup("MRI brain w/wo contrast").uses_contrast == "gadolinium"
    assert enhanced.ionising_radiation and not lookup("MRI brain").ionising_radiation


def test_fuzzy_rule_never_crosses_modality() -> None:
    for query in ["CT head", "head CT scan", "CT scan of the head", "CT left head"]:
        priced = lookup(query)
        assert priced.canonical == "ct head", (query, priced)
    for query in ["MRI head", "MRI of the head"]:
        assert lookup(query).canonical == "mri brain"
    # A modality the table has no entry for at that site must not borrow another modality's price.
    priced = lookup("PET head and neck with contrast")
    assert priced.canonical is None or "pet" in priced.canonical


def test_fuzzy_rule_adds_site_words_but_needs_an_anchor() -> None:
    assert lookup("Urethral biopsy").canonical == "biopsy"
    assert lookup("Urethral biopsy").how == "token"
    assert lookup("X-ray of the left elbow").canonical == "elbow x-ray"
    # "blood" alone is too generic to pull an unknown blood test onto some entry.
    assert not lookup("blood zirconium").matched


def test_unmatched_is_priced_at_the_default_and_reported() -> None:
    priced = lookup("Quantum flux assay")
    assert not priced.matched and priced.canonical is None and priced.how == "default"
    assert priced.price == DEFAULT_TEST_PRICE > 0


def test_default_price_sits_near_the_table_median() -> None:
    median = statistics.median(entry.price for entry in TABLE.entries if entry.category != "exam")
    assert median / 2 <= DEFAULT_TEST_PRICE <= median * 2


def test_order_splitting() -> None:
    assert [p.canonical for p in lookup_order("CBC and BMP")] == ["complete blood count", "basic metabolic panel"]
    assert [p.canonical for p in lookup_order("CBC, CMP, lipid panel")] == [
        "complete blood count", "comprehensive metabolic panel", "lipid panel",
    ]
    # A name that contains "and" is one test, not two.
    assert [p.canonical for p in lookup_order("CT abdomen and pelvis with contrast; TSH")] == [
        "ct abdomen and pelvis with contrast", "thyroid stimulating hormone",
    ]
    listed = lookup_order("1. CBC\n2. chest x-ray\n- urinalysis & quantum flux assay")
    assert [p.canonical for p in listed] == ["complete blood count", "chest x-ray", "urinalysis", None]
    assert len(lookup_order("CBC, full blood count")) == 1  # one test named twice is charged once


def test_every_price_is_non_negative_and_flags_are_typed() -> None:
    assert 250 <= len(TABLE)
    for entry in TABLE.entries:
        assert entry.price >= 0, entry
        assert entry.uses_contrast in (None, "iodinated", "gadolinium"), entry
        assert isinstance(entry.invasive, bool) and isinstance(entry.ionising_radiation, bool)


def test_no_name_or_alias_is_claimed_by_two_entries() -> None:
    names = Counter(entry.name.casefold() for entry in TABLE.entries)
    assert [name for name, count in names.items() if count > 1] == []
    assert TABLE.collisions == []


def test_every_canonical_is_reachable_by_its_own_name_and_aliases() -> None:
    for entry in TABLE.entries:
        assert lookup(entry.name).canonical == entry.name
        assert lookup(entry.name.upper().replace(" ", "_")).canonical == entry.name
        for alias in entry.aliases:
            assert lookup(alias).canonical == entry.name, (alias, lookup(alias))


def test_invasive_flags() -> None:
    for name in ["skin biopsy", "lumbar puncture", "colonoscopy", "cardiac catheterization", "arterial line"]:
        assert lookup(name).invasive, name
    for name in ["CBC", "chest x-ray", "abdominal ultrasound", "physical examination"]:
        assert not lookup(name).invasive, name


def test_examination_items_are_free() -> None:
    for name in ["physical examination", "vital signs", "Dix-Hallpike manoeuvre", "fundoscopy"]:
        priced = lookup(name)
        assert priced.matched and priced.price == 0, priced


@pytest.mark.skipif(not MEDQA.exists(), reason=f"AgentClinic MedQA cases not present at {MEDQA}")
def test_agentclinic_medqa_test_names_match() -> None:
    keys: Counter[str] = Counter()
    with MEDQA.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                results = json.loads(line)["OSCE_Examination"].get("Test_Results", {})
                keys.update(list(results) if isinstance(results, dict) else [])
    unmatched = {key: count for key, count in keys.items() if not lookup(key).matched}
    rate = 1 - sum(unmatched.values()) / sum(keys.values())
    print(f"MedQA Test_Results keys matched: {rate:.1%} of {sum(keys.values())} ({len(keys)} distinct)")
    assert rate >= 0.85, f"match rate {rate:.1%}; unmatched: {sorted(unmatched.items(), key=lambda kv: -kv[1])}"


def test_an_order_the_table_cannot_read_is_one_unmatched_test() -> None:
    table = FeeTable.default()
    prose = "The pain is quite severe and it started an hour ago and it is getting worse"
    priced = table.price_order(prose)
    assert len(priced) == 1 and not priced[0].matched and priced[0].requested == prose
    mixed = table.price_order("CBC and a frobnication assay")
    assert [p.matched for p in mixed] == [True, False]
    assert table.price_order("Let me check. REQUEST TEST: Serum_Uric_Acid")[0].canonical == "uric acid"
