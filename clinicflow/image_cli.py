"""``clinicflow image``: put an image in the cache, read it with the image model (MedGemma 4B), or triage it
zero-shot against labels (MedSigLIP).

Every command goes through the same content-addressed store as consultations and benchmark runs
(``images.cache_dir``), so an image fetched here is not fetched again there. A missing, corrupt or oversized image
is a one-line error naming the file or URL, exit 1; a missing model spec is one naming the setting to set, exit 2.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from clinicflow.logs import configure_logging
from clinicflow.settings import Settings
from clinicflow.terminal import console, err, fail, run_async

if TYPE_CHECKING:
    from agents.imaging import ImageInput, Modality
    from tools.images import ImageRef, ImageStore

T = TypeVar("T")

image_app = typer.Typer(
    help="Images: fetch into the cache, read with the image model (MedGemma 4B), zero-shot triage (MedSigLIP).",
    no_args_is_help=True,
)

NO_READER = (
    "no image reader: pass --imaging SPEC or set CLINICFLOW_MODELS__IMAGING ([models] imaging in the config file), "
    "e.g. hf:google/medgemma-4b-it (local weights, on a GPU) or openai:google/medgemma-4b-it@http://gpu-box:8000/v1 "
    "(a vLLM server)"
)
NO_TRIAGE = (
    "no triage model: pass --triage SPEC or set CLINICFLOW_IMAGES__TRIAGE ([images] triage in the config file), "
    "e.g. hf:google/medsiglip-448"
)

SourceArg = Annotated[str, typer.Argument(help="An image file path, or an http(s) URL.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ModalityOpt = Annotated[Optional[str], typer.Option(
    help="chest_xray, dermatology, pathology, ophthalmology, radiology or clinical_photo: picks the reader's prompt. "
         "[default: from the words of --question and the file name, else clinical_photo]", show_default=False)]


def _settings() -> Settings:
    try:
        settings = Settings()
    except Exception as exc:  # pydantic's ValidationError names the field and the accepted values
        fail(str(exc), 2)
    configure_logging(settings, err)
    return settings


def _source(text: str) -> str | Path:
    """A URL stays a string; anything else is a path (the store records it absolute)."""
    return text if "://" in text else Path(text).expanduser()


def _modality(choice: str | None, hints: list[str]) -> Modality:
    from agents.imaging import MODALITIES, modality_for

    if choice is None:
        return modality_for((), hint=" ".join(h for h in hints if h))
    if choice not in MODALITIES:
        fail(f"--modality {choice!r} is not one of: {', '.join(MODALITIES)}", 2)
    return choice  # type: ignore[return-value]  # checked against MODALITIES just above


async def _fetch(store: ImageStore, source: str) -> tuple[ImageRef, bool]:
    """The image's reference, and whether its bytes were read from the source (False: served from the cache)."""
    before = store.fetches
    ref = await store.add(_source(source))
    return ref, store.fetches > before


def _image_input(store: ImageStore, ref: ImageRef) -> ImageInput:
    # load() re-hashes the stored bytes: a damaged cache entry is an ImageDigestError naming the source.
    from agents.imaging import ImageInput

    return ImageInput(data=store.load(ref), media_type=ref["media_type"], image_id=ref["id"])


def _ref_line(ref: ImageRef) -> str:
    return (f"{ref['id']}  sha256 {ref['sha256']}  {ref['media_type']}  {ref['width']}x{ref['height']}  "
            f"{ref['size']:,} bytes")


def _plain(value: Any) -> Any:
    """Dataclasses and pydantic models as JSON-ready dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@image_app.command()
def fetch(source: SourceArg, as_json: JsonOpt = False) -> None:
    """Fetch an image into the cache (once per source) and print its reference: id, sha256, type, size."""
    from clinicflow import wiring

    settings = _settings()
    store = wiring.image_store(settings)
    ref, fetched = run_async(lambda: _fetch(store, source))
    path = store.path_of(ref)
    if as_json:
        console.print_json(json.dumps({**ref, "path": str(path), "fetched": fetched}))
        return
    # soft_wrap: a digest or a path broken over two lines could not be copied.
    console.print(_ref_line(ref), markup=False, highlight=False, soft_wrap=True)
    console.print(f"source: {ref['source']}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"stored: {path} ({'fetched' if fetched else 'from the cache, not fetched again'})",
                  markup=False, highlight=False, soft_wrap=True)


@image_app.command()
def read(
    source: SourceArg,
    modality: ModalityOpt = None,
    question: Annotated[Optional[str], typer.Option(help='What to look for, e.g. "pneumothorax?".', show_default=False)] = None,
    imaging: Annotated[Optional[str], typer.Option(help="The image model's spec. [default: settings models.imaging]", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Read an image with the image model: observations, impression, confidence and what it cannot see."""
    from agents.imaging import ImageReader
    from clinicflow import wiring

    settings = _settings()
    spec = wiring.imaging_spec(settings, imaging)
    if spec is None:
        fail(NO_READER, 2)
    chosen = _modality(modality, [question or "", Path(source).name])
    store = wiring.image_store(settings)
    # The image first: a missing or corrupt file is reported before minutes are spent loading weights.
    ref, _ = run_async(lambda: _fetch(store, source))
    image = _guarded(lambda: _image_input(store, ref))
    model = _guarded(lambda: wiring.build_imaging_model(settings, spec), spec)
    # Local weights load on the first call, so this is also where a wrong path or a missing GPU shows up.
    with console.status(f"Reading {ref['id']} as {chosen} with {spec}..."):
        result = run_async(lambda: ImageReader(model).read(image, modality=chosen, question=question))
    # An unusable reply is still an answer (shown, marked degraded); no answer at all is a failed command.
    answered = bool(result.reply) or not result.error
    if as_json:
        console.print_json(json.dumps({"image": dict(ref), "read": _plain(result)}, ensure_ascii=False))
    elif answered:
        _print_read(ref, result, spec)
    if not answered:
        fail(f"{ref['source']}: the image model ({spec}) gave no answer: {result.error}")


def _guarded(work: Callable[[], T], spec: str | None = None) -> T:
    """``work()``, with an input or set-up error (a damaged cache entry, a refused spec) as a one-line failure that
    names the spec involved."""
    from clinicflow.errors import user_facing

    try:
        return work()
    except Exception as exc:
        message = user_facing(exc)
        if message is None:
            raise
        fail(message if spec is None or spec in message else f"{spec}: {message}")


def _print_read(ref: ImageRef, result: Any, spec: str) -> None:
    findings = result.findings
    lines = [f"[bold]Image:[/] {escape(_ref_line(ref))}", f"[bold]Modality:[/] {escape(result.modality)}"]
    if findings is not None:
        lines.append("[bold]Observations:[/]")
        lines += [f"  - {escape(o)}" for o in findings.observations] or ["  (none)"]
        lines.append(f"[bold]Impression:[/] {escape(findings.impression)}")
        lines.append(f"[bold]Confidence:[/] {findings.confidence:.2f}")
        lines.append("[bold]Cannot assess:[/]")
        lines += [f"  - {escape(item)}" for item in findings.limitations] or ["  (nothing stated)"]
    else:
        lines.append(f"[bold]Read:[/] {escape(result.text)}")
    lines.append(f"[dim]{escape(result.model or spec)}: {result.input_tokens}+{result.output_tokens} tokens, "
                 f"{result.calls} call(s), {result.seconds:.1f}s[/]")
    console.print(Panel("\n".join(lines), title="clinicflow image read", expand=False))
    if result.degraded:
        err.print(f"[yellow]The reply was not usable findings (degraded){': ' + escape(result.error) if result.error else ''}. "
                  f"Raw reply:[/] {escape(result.reply[:500])}")


@image_app.command()
def triage(
    source: SourceArg,
    label: Annotated[list[str], typer.Option("--label", help="A candidate label, e.g. \"pneumothorax\"; give two or more.", show_default=False)],
    modality: ModalityOpt = None,
    triage_spec: Annotated[Optional[str], typer.Option("--triage", help="The zero-shot classifier's spec. [default: settings images.triage]", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Zero-shot triage: the probability of each label for the image (softmax over the labels given)."""
    from agents.imaging import ImageTriage
    from clinicflow import wiring

    settings = _settings()
    spec = wiring.triage_spec(settings, triage_spec)
    if spec is None:
        fail(NO_TRIAGE, 2)
    labels = list(dict.fromkeys(text.strip() for text in label if text.strip()))
    if len(labels) < 2:
        fail("give at least two different --label values: the probabilities are shared among the labels", 2)
    chosen = _modality(modality, [Path(source).name])
    store = wiring.image_store(settings)
    ref, _ = run_async(lambda: _fetch(store, source))
    image = _guarded(lambda: _image_input(store, ref))
    classifier = _guarded(lambda: wiring.build_triage(spec), spec)
    with console.status(f"Scoring {len(labels)} labels with {spec} (the first call loads the weights)..."):
        result = run_async(lambda: ImageTriage(classifier, model=spec).triage(image, labels, modality=chosen))
    if as_json:
        console.print_json(json.dumps({
            "image": dict(ref), "model": result.model, "seconds": result.seconds, "modality": chosen,
            "scores": [{"label": name, "probability": p} for name, p in result.scores],
        }, ensure_ascii=False))
        return
    table = Table(title=f"{ref['id']} ({ref['sha256'][:12]}): {len(labels)} labels")
    table.add_column("label")
    table.add_column("probability", justify="right")
    for name, probability in result.scores:
        table.add_row(escape(name), f"{probability:.3f}")
    console.print(table)
    console.print(f"[dim]{escape(result.model or spec)}, {result.seconds:.2f}s; zero-shot scores, not a diagnosis[/]")
