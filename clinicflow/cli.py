"""The ``clinicflow`` command line: a thin typer + rich layer over the Python API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.prompt import Prompt
from rich.table import Table

from clinicflow.bench_cli import bench_app
from clinicflow.errors import user_facing
from clinicflow.fhir_cli import fhir_app
from clinicflow.logs import configure_logging
from clinicflow.settings import ROLES, Settings
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

SPEC_FORMS = """Model specs (one per role):
  embedded                              SmolLM2-135M-Instruct shipped through PyPI (CPU, the default)
  hf:<hub id or path>[?options]         local transformers, e.g. hf:google/medgemma-27b-text-it?device=cuda&dtype=bfloat16
                                        options: device=cuda|cpu|mps|auto, dtype=bfloat16|float32, quant=4bit
  openai:<model>@<base url>             an OpenAI-compatible server (vLLM, TGI, Ollama, transformers serve, Vertex),
                                        e.g. openai:google/medgemma-27b-text-it@http://gpu-box:8000/v1"""

RoleOpt = Annotated[Optional[str], typer.Option(show_default=False)]


def _print_entry(entry: dict[str, Any]) -> None:
    styles = {"doctor": "bold cyan", "patient": "bold green", "measurement": "bold magenta", "clinician": "bold yellow",
              "record": "bold blue"}
    role = entry["role"]
    label = role.capitalize()
    if role == "doctor":
        label += f" · turn {entry['turn']} · {entry.get('action')}"
    cost = f"{entry.get('output_tokens', 0)} tok, {entry.get('seconds', 0.0):.1f}s"
    flag = " [red](unusable reply, degraded)[/]" if entry.get("degraded") else ""
    console.print(f"[{styles.get(role, 'bold')}]{escape(label)}[/] [dim]({cost})[/]{flag}")
    console.print(f"  {escape(entry['text'])}")


async def _ask_person(request: dict[str, Any]) -> str:
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
        f"[dim]{totals['turns']} turns, {totals['questions']} questions, {totals['tests']} tests; "
        f"{totals['input_tokens']}+{totals['output_tokens']} tokens; {transcript['wall_seconds']:.1f}s wall; "
        f"environment {transcript['environment']}[/]\n"
        f"[dim]transcript: {out / 'transcript.json'} and transcript.md[/]"
    )
    console.print(Panel(body, title=f"Consultation {transcript['thread_id']}", expand=False))


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
    try:
        settings = Settings(**overrides)
    except Exception as exc:  # pydantic's ValidationError names the field and the accepted values
        fail(str(exc), 2)
    configure_logging(settings, err)
    db = settings.checkpoint_target
    shown_db = describe_target(db)  # a Redis URL without its password: what messages and the resume hint show
    role_overrides = {"reasoning": reasoning, "patient": patient, "measurement": measurement, "judge": judge}

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
            else:
                case_ref = wiring.case_ref_for(case, dataset, index)
                is_interactive = interactive
                saved_record = {}
            the_case = wiring.resolve_case(case_ref, skip_bad=skip_bad)
            specs = wiring.role_specs(settings, role_overrides)
            if is_interactive:
                # Nobody simulated: the person plays patient and laboratory; the judge still scores a known case.
                specs = {role: spec for role, spec in specs.items() if role not in ("patient", "measurement")}
            with console.status("Preparing models (the first run converts the embedded model once)..."):
                models = wiring.build_role_models(settings, specs)
            setup = wiring.consultation_setup(settings, the_case, case_ref, specs, models, interactive=is_interactive)
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
                + f"\n[dim]{escape(record_line)}[/]",
                title="clinicflow consult", expand=False,
            ))
            # Names the same store when it was chosen on the command line (a setting is read again on resume).
            resume_hint = f"clinicflow consult --resume {thread_id}" + (
                f" --checkpointer {shown_db}" if checkpointer is not None
                else f" --checkpoint-db {shown_db}" if checkpoint_db is not None else "")
            try:
                transcript = await run_consultation(
                    setup, checkpointer=saver, thread_id=thread_id, resume=bool(resume),
                    on_entry=_print_entry, ask_person=_ask_person if is_interactive else None,
                )
            except (ConsultationPaused, EOFError, KeyboardInterrupt, asyncio.CancelledError):
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


@app.command()
def models(
    reasoning: RoleOpt = None,
    patient: RoleOpt = None,
    measurement: RoleOpt = None,
    judge: RoleOpt = None,
) -> None:
    """List the roles, the spec each uses and what it resolves to."""
    from agents.backends import describe_spec
    from clinicflow import wiring

    settings = Settings()
    specs = wiring.role_specs(settings, {"reasoning": reasoning, "patient": patient,
                                         "measurement": measurement, "judge": judge})
    table = Table(title="Model roles")
    for column in ("role", "spec", "resolves to"):
        table.add_column(column)
    for role in ROLES:
        try:
            info = describe_spec(specs[role], cache_dir=settings.model_cache_dir)
            detail = "\n".join(f"{k}: {v}" for k, v in info.items())
        except Exception as exc:
            detail = f"[red]{escape(str(exc))}[/]"
        table.add_row(role, escape(specs[role]), detail)
    console.print(table)
    console.print(SPEC_FORMS, markup=False, highlight=False)
    console.print("Set per role with --reasoning/--patient/--measurement/--judge or CLINICFLOW_MODELS__<ROLE>.",
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
