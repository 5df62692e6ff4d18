"""The ``clinicflow`` command line: a thin typer + rich layer over the Python API."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.prompt import Prompt
from rich.table import Table

from clinicflow.approval_prompt import ask_approval
from clinicflow.bench_cli import bench_app
from clinicflow.errors import user_facing
from clinicflow.fhir_cli import fhir_app
from clinicflow.image_cli import image_app
from clinicflow.logs import configure_logging
from clinicflow.panel_view import PanelPrinter, summary_lines
from clinicflow.settings import IMAGE_ROLE, TRIAGE_ROLE, Settings
from clinicflow.terminal import console, err, fail, run_async

app = typer.Typer(
    # Help texts say "[default: ...]"; as rich markup those brackets would be read as tags and vanish.
    rich_markup_mode=None,
    help="Agentic clinical workflows: simulated consultations on MedGemma (or the embedded model).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(fhir_app, name="fhir")
app.add_typer(bench_app, name="bench")
app.add_typer(image_app, name="image")

SPEC_FORMS = """Model specs (one per role):
  embedded                              SmolLM2-135M-Instruct shipped through PyPI (CPU, the default)
  hf:<hub id or path>[?options]         local transformers, e.g. hf:google/medgemma-27b-text-it?device=cuda&dtype=bfloat16
                                        options: device=cuda|cpu|mps|auto, dtype=bfloat16|float32, quant=4bit
  openai:<model>@<base url>             an OpenAI-compatible server (vLLM, TGI, Ollama, transformers serve, Vertex),
                                        e.g. openai:google/medgemma-27b-text-it@http://gpu-box:8000/v1
The imaging role (the image reader) takes hf: or openai: specs of an image-text model, e.g.
  hf:google/medgemma-4b-it?device=cuda or openai:google/medgemma-4b-it@http://gpu-box:8000/v1;
  unset (none), images are reported unread. The embedded model is text-only."""

RoleOpt = Annotated[Optional[str], typer.Option(show_default=False)]
ImagingOpt = Annotated[Optional[str], typer.Option(
    help="The image reader's model spec, e.g. hf:google/medgemma-4b-it or "
         "openai:google/medgemma-4b-it@http://gpu-box:8000/v1; none: no reader (images are reported unread). "
         "[default: settings models.imaging, else none]", show_default=False)]
ImageSettingOpt = Annotated[Optional[str], typer.Option(
    help="start: every image is read at intake and opens the consultation; request: the doctor asks for a read "
         "when it wants one. [default: settings images.setting, else request]", show_default=False)]
ImageDirOpt = Annotated[Optional[Path], typer.Option(
    help="A folder of NEJM case images named by case (nejm-0003.jpg, IC20240111.jpg or 3.jpg), used before the "
         "case's URL. [default: settings images.image_dir]", show_default=False)]
TriageOpt = Annotated[Optional[str], typer.Option(
    help="A zero-shot image classifier spec (hf:google/medsiglip-448) whose scores over the differential are added "
         "to each image read. [default: settings images.triage, else none]", show_default=False)]
DoctorOpt = Annotated[str | None, typer.Option(
    help="single (the one-node doctor) or panel (hypothesis, then test chooser, challenger, stewardship and checklist "
         "side by side, then one consensus action). [default: settings panel.doctor, else single]", show_default=False)]
VariantOpt = Annotated[str | None, typer.Option(
    help="The panel's variant: no-budget, budgeted (needs --budget), instant, questions or ensemble; implies --doctor "
         "panel. [default: settings panel.variant, else no-budget]", show_default=False)]
BudgetOpt = Annotated[float | None, typer.Option(
    min=0.01, help="The most the consultation may spend, USD: $300 per question round, fee-table prices for tests; a "
         "test that would pass it is refused. Either doctor. [default: settings panel.budget, else none]",
    show_default=False)]
EnsembleOpt = Annotated[int | None, typer.Option(
    min=2, max=16, help="Independent panels whose differentials are aggregated; implies --variant ensemble. "
         "[default: settings panel.ensemble, else 3]", show_default=False)]
AggregateOpt = Annotated[str | None, typer.Option(
    help="How the ensemble combines: mean (average probabilities) or majority (vote on each panel's top diagnosis); "
         "implies --variant ensemble. [default: settings panel.aggregate, else mean]", show_default=False)]
ApproveOpt = Annotated[str | None, typer.Option(
    help="When the consultation pauses for your approval: none, invasive (invasive tests), expensive (tests priced "
         "at --expensive-over or more), diagnosis (the final one) or all. [default: settings panel.approve, else none]",
    show_default=False)]
ExpensiveOverOpt = Annotated[float | None, typer.Option(
    min=0, help="USD from which a test counts as expensive. [default: settings panel.expensive_over, else 500]",
    show_default=False)]

# What an image status in a transcript means, for the summary.
IMAGE_STATUS = {
    "read": "[green]read[/]",
    "not_requested": "[yellow]not requested[/] (the doctor never asked for a read)",
    "unavailable": "[red]unavailable[/] (the image could not be had)",
    "no_reader": "[yellow]not read[/] (no image reader: set --imaging)",
    "failed": "[red]read failed[/]",
}


def _print_entry(entry: dict[str, Any]) -> None:
    styles = {"doctor": "bold cyan", "patient": "bold green", "measurement": "bold magenta", "clinician": "bold yellow",
              "record": "bold blue", "imaging": "bold red", "safety": "bold red"}
    role = entry["role"]
    label = role.capitalize()
    if role == "doctor":
        label += f" · turn {entry['turn']} · {entry.get('action')}"
    elif role == "imaging":
        label += "".join(f" · {entry[key]}" for key in ("image_id", "status") if entry.get(key))
    cost = f"{entry.get('output_tokens', 0)} tok, {entry.get('seconds', 0.0):.1f}s"
    flag = " [red](unusable reply, degraded)[/]" if entry.get("degraded") else ""
    console.print(f"[{styles.get(role, 'bold')}]{escape(label)}[/] [dim]({cost})[/]{flag}")
    console.print(f"  {escape(entry['text'])}")


async def _ask_person(request: Mapping[str, Any]) -> Any:
    """The person's part when the graph pauses: a clinician's verdict on an approval request, else the patient's
    answer or a test result (interactive consultations)."""
    if request.get("kind") == "approval":
        return await ask_approval(request)
    console.print(f"[bold yellow]The doctor {'asks' if request['action'] == 'ask' else 'orders'}:[/] "
                  f"{escape(request['text'])}")
    return await asyncio.to_thread(Prompt.ask, f"[yellow]{request['prompt']}[/]", console=console)


def _summary(transcript: dict[str, Any], out: Path) -> None:
    outcome, verdict = transcript["outcome"], transcript.get("verdict")
    if verdict is None:
        verdict_text = "[dim]not judged[/]"
    else:
        verdict_text = {True: "[bold green]correct[/]", False: "[bold red]incorrect[/]",
                        None: "[yellow]unjudged[/] (the judge's answer could not be read)"}[verdict["correct"]]
    totals = transcript["totals"]
    body = (
        f"[bold]Final diagnosis:[/] {escape(str(outcome['final_diagnosis']))}"
        f" [dim](ended by {outcome['ended_by']})[/]\n"
        f"[bold]Correct diagnosis:[/] {escape(str(transcript['case']['correct_diagnosis'] or 'unknown'))}\n"
        f"[bold]Verdict:[/] {verdict_text}\n"
        + _image_summary(transcript)
        + "".join(line + "\n" for line in summary_lines(transcript))
        + f"[dim]{totals['turns']} turns, {totals['questions']} questions, {totals['tests']} tests; "
        f"{totals['input_tokens']}+{totals['output_tokens']} tokens; {transcript['wall_seconds']:.1f}s wall; "
        f"environment {transcript['environment']}[/]\n"
        f"[dim]transcript: {out / 'transcript.json'} and transcript.md[/]"
    )
    console.print(Panel(body, title=f"Consultation {transcript['thread_id']}", expand=False))


def _image_summary(transcript: dict[str, Any]) -> str:
    """The end panel's image lines: status, the images (by digest), each read with what it found, and why any image
    is missing; nothing for a case without images."""
    images = transcript.get("images")
    if not images or images.get("status") is None:
        return ""
    refs = images.get("refs") or []
    shown = ", ".join(f"{r['id']} ({r['media_type']}, {r['width']}x{r['height']}, sha256 {r['sha256'][:12]})"
                      for r in refs) or "none available"
    status = IMAGE_STATUS.get(images["status"], escape(str(images["status"])))
    lines = [f"[bold]Images:[/] {status}; {escape(shown)}; setting {escape(str(images.get('setting')))}"]
    findings = {(f["turn"], f["source"]): f["text"] for f in transcript.get("findings") or []
                if str(f.get("source", "")).startswith("image")}
    for read in images.get("reads") or []:
        when = "intake" if read.get("turn") == 0 else f"turn {read.get('turn')}"
        text = findings.get((read.get("turn"), f"image:{read.get('image_id')}"), "")
        text = text.removeprefix(f"{read.get('image_id')}: ")  # the finding names its image; the line already does
        lines.append(f"  {escape(str(read.get('image_id')))} ({when}, {escape(str(read.get('status')))}): "
                     f"{escape(text[:300])}")
    lines += [f"  [red]missing:[/] {escape(str(reason))}" for reason in images.get("missing") or []]
    return "\n".join(lines) + "\n"


def _image_sources(sources: list[str] | None) -> list[str]:
    """``--image`` values as the store and a later ``--resume`` need them: URLs as given, paths made absolute."""
    found = []
    for source in sources or []:
        if "://" in source:
            found.append(source)
        else:
            found.append(str(Path(source).expanduser().resolve()))
    return found


@app.command()
def consult(
    case: Annotated[Optional[str], typer.Option(help="A built-in case, e.g. demo:chest-pain (see `clinicflow cases`).")] = None,
    dataset: Annotated[Optional[Path], typer.Option(help="An AgentClinic JSONL file (MedQA or NEJM style).")] = None,
    index: Annotated[int, typer.Option(help="0-based case index within --dataset.")] = 0,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip malformed lines in --dataset instead of stopping.")] = False,
    reasoning: RoleOpt = None,
    patient: RoleOpt = None,
    measurement: RoleOpt = None,
    judge: RoleOpt = None,
    max_turns: Annotated[Optional[int], typer.Option(min=1, help="Doctor turns; the last one forces a diagnosis. [default: 20]")] = None,
    measurement_mode: Annotated[Optional[str], typer.Option(help="strict (unlisted tests: not available) or agentclinic (NORMAL READINGS). [default: strict]")] = None,
    interactive: Annotated[bool, typer.Option("--interactive", help="You answer as the patient and the laboratory.")] = False,
    resume: Annotated[Optional[str], typer.Option(help="Continue an interrupted consultation by its thread id.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Where to write transcript.json and transcript.md. [default: runs/THREAD]")] = None,
    checkpointer: Annotated[str | None, typer.Option(help="Where checkpoints live: redis://HOST:PORT/DB (rediss:// for TLS), a SQLite file, or :memory:. [default: settings, else checkpoints.sqlite in the user data dir]")] = None,
    checkpoint_db: Annotated[Optional[Path], typer.Option(help="SQLite checkpoint file, or :memory: (the same as --checkpointer PATH).")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="0 is greedy. [default: 0]")] = None,
    seed: Annotated[Optional[int], typer.Option()] = None,
    fhir_url: Annotated[Optional[str], typer.Option(help="FHIR server holding the patient's record. [default: settings, else a running `clinicflow fhir serve`]")] = None,
    patient_id: Annotated[Optional[str], typer.Option("--fhir-patient", help="FHIR Patient id of the record to read. [default: the case's own, e.g. demo-chest-pain]")] = None,
    image: Annotated[Optional[list[str]], typer.Option("--image", help="An image for the doctor: a file path or an http(s) URL; repeat for several. Works with any case (a demo case too).", show_default=False)] = None,
    imaging: ImagingOpt = None,
    image_setting: ImageSettingOpt = None,
    image_dir: ImageDirOpt = None,
    triage: TriageOpt = None,
    doctor: DoctorOpt = None,
    variant: VariantOpt = None,
    budget: BudgetOpt = None,
    ensemble: EnsembleOpt = None,
    aggregate: AggregateOpt = None,
    approve: ApproveOpt = None,
    expensive_over: ExpensiveOverOpt = None,
) -> None:
    """Run one consultation: a model doctor interviews a simulated (or real) patient and commits to a diagnosis."""
    from contextlib import AsyncExitStack

    from clinicflow import fhir_wiring, wiring
    from graphs.checkpointers import CheckpointerError, describe_target, open_checkpointer
    from simulations.session import ConsultationPaused, run_consultation, saved_origin
    from simulations.transcript import write_transcript

    if checkpointer is not None and checkpoint_db is not None:
        fail("give --checkpointer or --checkpoint-db, not both", 2)
    # --checkpoint-db is the older name for --checkpointer PATH; either one overrides the setting.
    chosen_checkpointer = checkpointer if checkpointer is not None else (
        str(checkpoint_db) if checkpoint_db is not None else None)
    overrides: dict[str, Any] = {
        k: v
        for k, v in {"max_turns": max_turns, "measurement_mode": measurement_mode,
                     "temperature": temperature, "seed": seed, "checkpointer": chosen_checkpointer}.items()
        if v is not None
    }
    image_overrides = {k: v for k, v in {"setting": image_setting, "image_dir": image_dir}.items() if v is not None}
    if image_overrides:
        overrides["images"] = image_overrides
    try:
        panel_overrides = wiring.panel_overrides(
            doctor=doctor, variant=variant, budget=budget, ensemble=ensemble, aggregate=aggregate, approve=approve,
            expensive_over=expensive_over)
    except ValueError as exc:
        fail(str(exc), 2)
    if panel_overrides:
        overrides["panel"] = panel_overrides
    try:
        settings = Settings(**overrides)
    except Exception as exc:  # pydantic's ValidationError names the field and the accepted values
        fail(str(exc), 2)
    configure_logging(settings, err)
    db = settings.checkpoint_target
    shown_db = describe_target(db)  # a Redis URL without its password: what messages and the resume hint show
    role_overrides = {"reasoning": reasoning, "patient": patient, "measurement": measurement, "judge": judge,
                      IMAGE_ROLE: imaging, TRIAGE_ROLE: triage}
    given_images = _image_sources(image)

    async def main() -> None:
        async with AsyncExitStack() as stack:
            try:
                saver = await stack.enter_async_context(
                    open_checkpointer(db, ttl_minutes=settings.checkpoint_ttl_minutes))
            except CheckpointerError as exc:  # an unreachable or unfit Redis: its message names the redacted URL
                fail(str(exc))
            thread_id = resume
            if resume:
                saved = await saved_origin(saver, resume)
                if not saved:
                    fail(f"no consultation {resume!r} in {shown_db}")
                case_ref = saved["case_ref"]
                for role, spec in saved.get("specs", {}).items():
                    role_overrides[role] = role_overrides.get(role) or spec
                settings.max_turns = saved.get("max_turns", settings.max_turns)
                settings.measurement_mode = saved.get("measurement_mode", settings.measurement_mode)
                is_interactive = bool(saved.get("interactive"))
                saved_record = saved.get("record") or {}
                # The images the consultation started with, and how they were offered, are part of the case.
                saved_images = saved.get("images") or {}
                image_sources = given_images or list(saved_images.get("sources") or [])
                if saved_images.get("setting") in ("start", "request"):
                    settings.images.setting = saved_images["setting"]
                if saved_images.get("image_dir") and image_dir is None:
                    settings.images.image_dir = Path(saved_images["image_dir"])
                # The doctor and its rules are part of the consultation: the checkpointed graph runs under them.
                doctor_choice = wiring.saved_doctor_fields(saved.get("doctor"))
                if panel_overrides and doctor_choice is not None:
                    err.print("[yellow]note:[/] a resumed consultation keeps the doctor, budget and approval policy "
                              "it started with; --doctor, --variant, --budget, --approve ... are ignored.")
            else:
                case_ref = wiring.case_ref_for(case, dataset, index)
                is_interactive = interactive
                saved_record = {}
                image_sources = given_images
                doctor_choice = None
            try:
                doctor_choice = doctor_choice or wiring.doctor_fields(settings)
            except ValueError as exc:  # e.g. the budgeted variant without --budget: the message names the field
                fail(str(exc), 2)
            the_case = wiring.resolve_case(case_ref, skip_bad=skip_bad)
            specs = wiring.role_specs(settings, role_overrides)
            if is_interactive:
                # Nobody simulated: the person plays patient and laboratory; the judge still scores a known case.
                specs = {role: spec for role, spec in specs.items() if role not in ("patient", "measurement")}
            reader_spec = wiring.imaging_spec(settings, role_overrides.get(IMAGE_ROLE))
            triage_spec = wiring.triage_spec(settings, role_overrides.get(TRIAGE_ROLE))
            if triage_spec and reader_spec is None:
                err.print("[yellow]note:[/] triage scores are added to image reads, and there is no image reader "
                          "(--imaging): triage is off.")
                triage_spec = None
            with console.status("Preparing models (the first run converts the embedded model once)..."):
                models = wiring.build_role_models(settings, specs)
                specs, models = wiring.with_imaging(settings, specs, models, reader_spec, triage_spec)
                classifier = wiring.build_triage(triage_spec) if triage_spec else None
            setup = wiring.consultation_setup(
                settings, the_case, case_ref, specs, models, interactive=is_interactive, image_sources=image_sources,
                store=wiring.image_store(settings), classifier=classifier, doctor=doctor_choice,
            )
            thread_id = thread_id or wiring.new_thread_id(the_case)
            record_patient = patient_id or saved_record.get("patient") or the_case.patient_id
            record_base = None
            if record_patient:
                record_base = fhir_wiring.resolve_base_url(settings, fhir_url or saved_record.get("base_url"))
            if record_patient and record_base:
                setup.record = await stack.enter_async_context(fhir_wiring.open_record_lookup(
                    settings, record_base, record_patient, models["reasoning"]))
                setup.record_origin = {"base_url": record_base, "patient": record_patient}
                record_line = f"record: Patient/{record_patient} at {record_base}"
            elif record_patient:
                record_line = (f"no record read (the case has Patient/{record_patient}: start `clinicflow fhir serve` "
                               "or pass --fhir-url)")
            else:
                record_line = "no health record for this case"
            console.print(Panel(
                f"[bold]Case:[/] {escape(the_case.id)}\n[bold]Objective:[/] {escape(the_case.objective)}\n"
                + "\n".join(f"[dim]{r}: {escape(s)}[/]" for r, s in specs.items())
                + f"\n[dim]thread {thread_id}; {settings.max_turns} turns; "
                  f"{'interactive' if is_interactive else 'measurement ' + settings.measurement_mode}[/]"
                + f"\n[dim]{escape(record_line)}[/]"
                + f"\n[dim]doctor: {escape(wiring.describe_doctor(doctor_choice))}[/]"
                + _image_line(the_case.image_url, image_sources, reader_spec, settings),
                title="clinicflow consult", expand=False,
            ))
            # Names the same store when it was chosen on the command line (a setting is read again on resume).
            resume_hint = f"clinicflow consult --resume {thread_id}" + (
                f" --checkpointer {shown_db}" if checkpointer is not None
                else f" --checkpoint-db {shown_db}" if checkpoint_db is not None else "")
            try:
                # A person may be asked for answers (interactive) or approvals (--approve): one callback for both.
                transcript = await run_consultation(
                    setup, checkpointer=saver, thread_id=thread_id, resume=bool(resume),
                    on_entry=_print_entry, on_update=PanelPrinter(console), ask_person=_ask_person,
                )
            except (ConsultationPaused, EOFError, KeyboardInterrupt, asyncio.CancelledError):
                console.print()  # end the prompt's line: nothing was typed on it
                err.print(f"[yellow]Paused. Continue with:[/] {resume_hint}")
                raise typer.Exit(3) from None
            except Exception as exc:
                message = user_facing(exc)
                if message is None:
                    raise
                # Every finished step is checkpointed: after fixing the cause, the consultation goes on from there.
                err.print(f"[bold red]error:[/] {escape(message)}\n[yellow]Finished turns are kept. "
                          f"Continue with:[/] {resume_hint}")
                raise typer.Exit(1) from None
            out_dir = out or Path("runs") / thread_id
            write_transcript(out_dir, transcript)
            _summary(transcript, out_dir)

    run_async(main, interrupted="Interrupted; every finished step is checkpointed. Rerun with --resume THREAD.")


def _image_line(case_image: str | None, sources: list[str], reader: str | None, settings: Settings) -> str:
    """The header's image line: what the consultation will see and whether anything can read it."""
    if not sources and not case_image:
        return ""
    what = f"{len(sources)} attached" if sources else "the case's"
    if case_image and sources:
        what += " + the case's"
    reading = "no image reader: images will be marked no_reader" if reader is None else "read on request" if (
        settings.images.setting == "request") else "read at intake"
    return f"\n[dim]images: {what}; {reading}[/]"


@app.command()
def models(
    reasoning: RoleOpt = None,
    patient: RoleOpt = None,
    measurement: RoleOpt = None,
    judge: RoleOpt = None,
    imaging: ImagingOpt = None,
    triage: TriageOpt = None,
) -> None:
    """List the roles, the spec each uses and what it resolves to."""
    from agents.backends import describe_spec
    from clinicflow import wiring

    settings = Settings()
    specs: dict[str, str | None] = dict(wiring.role_specs(
        settings, {"reasoning": reasoning, "patient": patient, "measurement": measurement, "judge": judge}))
    specs[IMAGE_ROLE] = wiring.imaging_spec(settings, imaging)
    specs[TRIAGE_ROLE] = wiring.triage_spec(settings, triage)
    table = Table(title="Model roles")
    for column in ("role", "spec", "resolves to"):
        table.add_column(column)
    for role, spec in specs.items():
        if spec is None:
            unset = ("no image reader: images are reported unread" if role == IMAGE_ROLE
                     else "no triage: image reads carry no classifier scores")
            table.add_row(role, "none", f"[dim]{unset}[/]")
            continue
        try:
            info = describe_spec(spec, cache_dir=settings.model_cache_dir)
            detail = "\n".join(f"{k}: {v}" for k, v in info.items())
            if role == IMAGE_ROLE and info.get("kind") == "embedded":
                detail = "[red]the embedded model is text-only: use hf:google/medgemma-4b-it or an openai: server[/]"
            elif role == TRIAGE_ROLE and info.get("kind") != "hf":
                detail = "[red]triage runs local weights only: use hf:google/medsiglip-448[/]"
        except Exception as exc:
            detail = f"[red]{escape(str(exc))}[/]"
        table.add_row(role, escape(spec), detail)
    console.print(table)
    console.print(SPEC_FORMS, markup=False, highlight=False)
    console.print("Set per role with --reasoning/--patient/--measurement/--judge/--imaging or "
                  "CLINICFLOW_MODELS__<ROLE>; triage with --triage or CLINICFLOW_IMAGES__TRIAGE.",
                  markup=False, highlight=False)


@app.command()
def graph() -> None:
    """Print the consultation graph as a Mermaid diagram."""
    from graphs.consultation import consultation_mermaid

    console.print(consultation_mermaid(), markup=False, highlight=False, soft_wrap=True)


@app.command()
def cases(
    dataset: Annotated[Optional[Path], typer.Argument(help="A JSONL file; without it, the built-in demo cases.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad")] = False,
) -> None:
    """List the built-in demo cases, or the cases in a dataset file."""
    from simulations.cases import demo_cases, load_cases

    if dataset is None:
        listed = demo_cases()
    else:
        try:
            loaded = load_cases(dataset, skip_bad=skip_bad)
        except Exception as exc:
            fail(str(exc))
        listed = loaded.cases
        for problem in loaded.problems:
            err.print(f"[yellow]skipped:[/] {escape(str(problem))}")
    table = Table(title=f"{len(listed)} cases")
    for column in ("id", "objective", "diagnosis"):
        table.add_column(column, overflow="fold")
    for c in listed:
        table.add_row(c.id, escape(c.objective[:90]), escape(c.correct_diagnosis or ""))
    console.print(table)


def main() -> None:
    app()
