"""The citation check: citations of fetched resources stay, invented ones go, uncited sentences are flagged."""

from __future__ import annotations

from agents.navigator import check_citations, find_citations

KNOWN = {"Observation/a1c-2023", "Encounter/e-2023", "Condition/c-dm"}


def test_valid_citations_are_kept_in_order_of_use() -> None:
    check = check_citations(
        "HbA1c was 6.8 % on 2023-11-20 [Observation/a1c-2023]. She has diabetes [Condition/c-dm].", KNOWN
    )
    assert check.used == ["Observation/a1c-2023", "Condition/c-dm"]
    assert check.dropped == []
    assert check.unsupported == []
    assert "[Observation/a1c-2023]" in check.text and "[Condition/c-dm]" in check.text


def test_invented_citations_are_removed_and_listed() -> None:
    check = check_citations("HbA1c 6.8 % [Observation/a1c-2023, Observation/made-up]. Also [Patient/evil].", KNOWN)
    assert check.dropped == ["Observation/made-up", "Patient/evil"]
    assert "made-up" not in check.text and "evil" not in check.text
    assert "[Observation/a1c-2023]" in check.text
    # The sentence that only cited an invented resource is now unsupported.
    assert check.unsupported == ["Also."]


def test_bare_references_count_as_citations() -> None:
    check = check_citations("Seen at Encounter/e-2023; see Patient/evil for more.", KNOWN)
    assert check.used == ["Encounter/e-2023"]
    assert check.dropped == ["Patient/evil"]
    assert "[Encounter/e-2023]" in check.text
    assert "Patient/evil" not in check.text


def test_versions_and_semicolons_are_normalised() -> None:
    check = check_citations("Diabetes [Condition/c-dm/_history/3; Encounter/e-2023].", KNOWN)
    assert check.used == ["Condition/c-dm", "Encounter/e-2023"]
    assert check.dropped == []


def test_sentences_without_a_valid_citation_are_flagged_not_removed() -> None:
    answer = "Results:\nHbA1c fell to 6.8 % [Observation/a1c-2023]. It is well controlled. No allergies are recorded."
    check = check_citations(answer, KNOWN)
    assert check.unsupported == ["It is well controlled.", "No allergies are recorded."]
    assert "It is well controlled." in check.text  # flagged, kept
    assert "Results:" not in check.unsupported  # a heading introducing a list carries no fact


def test_text_that_is_not_a_reference_is_left_alone() -> None:
    check = check_citations("Pain score [Score] 3/10 and ratio 1/2 [Observation/a1c-2023].", KNOWN)
    assert "[Score]" in check.text and "3/10" in check.text
    assert check.dropped == []


def test_urls_are_not_citations() -> None:
    assert find_citations("see http://evil.example/Patient/evil") == []


def test_find_citations_in_order_with_repeats() -> None:
    text = "[Observation/1] then Condition/2 and [Observation/1, Encounter/3]"
    assert find_citations(text) == ["Observation/1", "Condition/2", "Observation/1", "Encounter/3"]
