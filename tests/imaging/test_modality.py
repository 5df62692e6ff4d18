"""modality_for: every NEJM_Ext image type, the chest rule for X-rays, free-text hints, and the default."""

from __future__ import annotations

import pytest

from agents.imaging import MODALITIES, MODALITY_LABELS, check_modality, modality_for


@pytest.mark.parametrize(
    ("image_type", "expected"),
    [
        ("physical", "clinical_photo"),
        ("CT scan", "radiology"),
        ("dermatology", "dermatology"),
        ("hist/path", "pathology"),
        ("xray", "radiology"),
        ("ophthalmology", "ophthalmology"),
        ("biopsy", "pathology"),
        ("MRI", "radiology"),
        ("surgical", "clinical_photo"),
        ("instrument", "clinical_photo"),
        ("ECG", "clinical_photo"),
        ("ultrasound", "radiology"),
        ("echocardiogram", "radiology"),
    ],
)
def test_every_nejm_ext_type_maps_to_its_modality(image_type: str, expected: str) -> None:
    assert modality_for([image_type]) == expected
    assert modality_for([f"  {image_type.upper()} "]) == expected  # case and padding do not matter


@pytest.mark.parametrize("hint", ["Chest X-ray, PA view", "lung fields", "thorax radiograph", "CXR"])
def test_an_xray_is_a_chest_xray_only_when_the_hint_names_the_chest(hint: str) -> None:
    assert modality_for(["xray"], hint) == "chest_xray"
    assert modality_for(["xray"], "radiograph of the left knee") == "radiology"


def test_the_first_decisive_type_wins_and_unknown_types_are_skipped() -> None:
    assert modality_for(["dermatology", "hist/path"]) == "dermatology"
    assert modality_for(["hist/path", "dermatology"]) == "pathology"
    assert modality_for(["", "something else", "MRI", "physical"]) == "radiology"
    assert modality_for(["physical"], "chest x-ray") == "clinical_photo"  # a decisive type beats the hint


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("chest x-ray", "chest_xray"),
        ("x-ray of the hand", "radiology"),
        ("skin rash on the forearm", "dermatology"),
        ("H&E stained biopsy slide", "pathology"),
        ("fundus photograph of the right eye", "ophthalmology"),
        ("CT of the orbit", "radiology"),  # the technique beats the body part
        ("abdominal ultrasound", "radiology"),
        ("history of fever", "clinical_photo"),  # "history" is not histology
        ("photo of the hand", "clinical_photo"),
        ("chest_xray", "chest_xray"),  # a modality's own name
        ("", "clinical_photo"),
    ],
)
def test_free_text_hints(hint: str, expected: str) -> None:
    assert modality_for([], hint) == expected


def test_a_type_outside_the_vocabulary_is_read_like_a_hint_and_a_bare_string_is_one_type() -> None:
    assert modality_for(["chest radiograph"]) == "chest_xray"
    assert modality_for("dermatology") == "dermatology"  # type: ignore[arg-type]  # records sometimes store one


def test_modalities_labels_and_the_check() -> None:
    assert (
        set(MODALITIES)
        == set(MODALITY_LABELS)
        == {
            "chest_xray",
            "dermatology",
            "pathology",
            "ophthalmology",
            "radiology",
            "clinical_photo",
        }
    )
    assert check_modality("pathology") == "pathology"
    with pytest.raises(ValueError, match="unknown image modality 'xray'.*chest_xray"):
        check_modality("xray")
