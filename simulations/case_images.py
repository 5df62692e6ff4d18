"""The images of one case: found in a local image directory or fetched from the case's URL into the image store.

AgentClinic-NEJM cases name their figure by URL (``csvc.nejm.org/...?id=IC20240111``). NEJM holds the copyright and
the files are never shipped, so a user either lets the store fetch (and cache) them or keeps them in a directory
(``--image-dir``) under a name the case can be found by (see ``local_image_for``). Consult's ``--image`` sources are
added after the case's own image.

An image that cannot be had never stops a consultation: ``prepare_case_images`` turns every image problem into a
``missing`` reason, and the attempt is then marked "image unavailable" instead of silently running text-only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from simulations.cases import Case
from tools.images import ImageError, ImageRef, ImageStore, redact_source

__all__ = [
    "IMAGE_SETTINGS", "IMAGE_STATUSES", "IMAGE_SUFFIXES", "CaseImages", "ImageSetting", "ImageStatus", "image_status", "local_image_for",
    "nejm_image_id", "prepare_case_images",
]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
# A name that stays inside the image directory: no separators, no "..", nothing a shell would trip on.
_SAFE_STEM = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]*\Z")

# When the image reader runs: "start" (at intake, into the doctor's opening context) or "request" (when the doctor
# asks for a read), AgentClinic-NEJM's two settings.
ImageSetting = Literal["start", "request"]
IMAGE_SETTINGS: tuple[str, ...] = ("start", "request")
# What happened to a consultation's images (None: the case has none). "unavailable" attempts are the ones a report
# leaves out of its image-aware accuracy: the doctor never had the image the case is about.
ImageStatus = Literal["read", "not_requested", "unavailable", "no_reader", "failed"]
IMAGE_STATUSES: tuple[str, ...] = ("read", "not_requested", "unavailable", "no_reader", "failed")


@dataclass
class CaseImages:
    """What a consultation can show its image reader: stored refs, and why each expected image is missing.

    ``expected`` is True when the case has an image at all (a URL, a local file, or a source given by the user),
    so a case without images (MedQA) is told apart from one whose image could not be had.
    """

    refs: list[ImageRef] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # "image-1: <reason naming the source>"
    expected: bool = False


def nejm_image_id(image_url: str | None) -> str | None:
    """The NEJM Image Challenge id in an image URL's ``id=`` parameter (``IC20240111``), if it is a safe name."""
    if not image_url:
        return None
    try:
        values = parse_qs(urlsplit(image_url).query).get("id") or []
    except ValueError:
        return None
    value = values[0].strip() if values else ""
    return value if _SAFE_STEM.match(value) else None


def _stems(case: Case) -> list[str]:
    """The file names (without suffix) a case's image may have, in the order they are tried."""
    candidates = [case.id.replace(":", "-"), nejm_image_id(case.image_url), str(case.index)]
    stems: list[str] = []
    for stem in candidates:
        if stem and _SAFE_STEM.match(stem) and stem.lower() not in stems:
            stems.append(stem.lower())
    return stems


def local_image_for(case: Case, image_dir: Path) -> Path | None:
    """The file in ``image_dir`` that holds ``case``'s image, or None.

    Names are tried in order, the first that exists wins: the case id with ':' as '-' (``nejm-0003.jpg``), the NEJM
    image id from the case's URL (``IC20240111.jpg``), then the case's 0-based index (``3.jpg``); each with any of
    ``IMAGE_SUFFIXES`` (in that order), names and suffixes matched without regard to case.
    """
    directory = Path(image_dir).expanduser()
    try:
        files = {entry.name.lower(): entry for entry in directory.iterdir() if entry.is_file()}
    except OSError:  # no such directory, or not readable: no local image (the caller names the directory)
        return None
    for stem in _stems(case):
        for suffix in IMAGE_SUFFIXES:
            found = files.get(stem + suffix)
            if found is not None:
                return found
    return None


def _reason(image_id: str, source: str | Path, exc: BaseException) -> str:
    message = str(exc) or type(exc).__name__
    shown = redact_source(str(source))
    # The store's errors name their source already; other failures (a disk error) get it prefixed.
    return f"{image_id}: {message}" if shown in message else f"{image_id}: {shown}: {message}"


async def _add(store: ImageStore, source: str | Path, image_id: str) -> tuple[ImageRef | None, str | None]:
    try:
        return await store.add(source, image_id=image_id), None
    except (ImageError, OSError) as exc:
        return None, _reason(image_id, source, exc)


async def prepare_case_images(
    case: Case,
    store: ImageStore | None,
    *,
    image_dir: Path | None = None,
    extra_sources: Sequence[str] = (),
    download: bool = True,
) -> CaseImages:
    """Store the case's image (a local file first, else its URL) and each extra source; ids ``image-1``, ``image-2``...

    Never raises for an image problem: an image that cannot be had (no store, a missing or corrupt file, an
    unreachable URL, ``download`` off for a URL-only image) becomes a ``missing`` reason naming its source.
    """
    local = local_image_for(case, image_dir) if image_dir is not None else None
    case_has_image = bool(case.image_url) or local is not None
    result = CaseImages(expected=case_has_image or bool(extra_sources))
    if not result.expected:
        return result
    number = 0

    def next_id() -> str:
        nonlocal number
        number += 1
        return f"image-{number}"

    if store is None:
        sources: list[str | Path] = [local or case.image_url or ""] if case_has_image else []
        for source in [*sources, *extra_sources]:
            result.missing.append(f"{next_id()}: {redact_source(str(source))}: no image store is configured to hold it")
        return result

    if case_has_image:
        image_id = next_id()
        reasons: list[str] = []
        ref = None
        if local is not None:
            ref, reason = await _add(store, local, image_id)
            if reason:
                reasons.append(reason)
        if ref is None and case.image_url:
            if not download:
                reasons.append(f"{image_id}: {redact_source(case.image_url)}: download disabled"
                               + ("" if image_dir is None else f" and no file for this case in {image_dir}"))
            else:
                if local is not None:
                    logger.warning("case %s: local image %s unusable; fetching %s", case.id, local,
                                   redact_source(case.image_url))
                ref, reason = await _add(store, case.image_url, image_id)
                if reason:
                    if image_dir is not None and local is None:
                        reason += f" (and no file for this case in {image_dir})"
                    reasons.append(reason)
        if ref is not None:
            result.refs.append(ref)
        else:
            # Each attempt's reason stays whole; a fallback that also failed is joined to the first.
            result.missing.append("; ".join([reasons[0], *(r.split(": ", 1)[1] for r in reasons[1:])]))

    for source in extra_sources:
        ref, reason = await _add(store, source, next_id())
        if ref is not None:
            result.refs.append(ref)
        elif reason:
            result.missing.append(reason)
    return result


def image_status(
    images: CaseImages, reads: Sequence[Mapping[str, Any]], *, setting: str, has_reader: bool
) -> ImageStatus | None:
    """One word for what became of a consultation's images, from what was prepared and the graph's image reads.

    None: the case has no image. "unavailable": none of its expected images could be had. "no_reader": there is an
    image but no imaging model. "read": at least one read succeeded. "failed": reads were made (or due at intake)
    and none succeeded. "not_requested": the doctor could have asked (setting "request") and never did.
    """
    if not images.expected:
        return None
    if not images.refs:
        return "unavailable"
    if not has_reader:
        return "no_reader"
    if any(read.get("status") == "read" for read in reads):
        return "read"
    if reads or setting == "start":
        return "failed"
    return "not_requested"
