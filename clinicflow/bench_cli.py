"""``clinicflow bench``: run a benchmark over a dataset (resumable), write its report, compare two runs."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from clinicflow.errors import user_facing
from clinicflow.logs import configure_logging
from clinicflow.settings import IMAGE_ROLE, TRIAGE_ROLE, Settings
from clinicflow.terminal import console, err, fail, run_async

bench_app = typer.Typer(help="Benchmark runs over AgentClinic-style datasets: run, report, compare.",
                        no_args_is_help=True)

RoleOpt = Annotated[Optional[str], typer.Option(show_default=False)]
INTERRUPTED = "Interrupted: every finished attempt is kept. Run the same command again to resume."


class _Live:
    """The progress bar: attempts done of planned, errors, running accuracy, ETA."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("errors [red]{task.fields[errors]}[/]"), TextColumn("accuracy {task.fields[accuracy]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self.task: Any = None
        self.errors = self.judged = self.correct = 0

    def __call__(self, event: Any) -> None:
        if event.kind == "planned":
            self.judged, self.correct = event.judged, event.correct
            self.task = self.progress.add_task("attempts", total=event.planned, completed=event.skipped,
                                               errors=0, accuracy=self._accuracy())
            return
        if event.kind != "finished" or self.task is None:
            return
        result = event.result
        if result.status == "error":
            self.errors += 1
        elif result.correct is not None:
            self.judged += 1
            self.correct += bool(result.correct)
        self.progress.update(self.task, advance=1, errors=self.errors, accuracy=self._accuracy())

    def _accuracy(self) -> str:
        return f"{self.correct / self.judged:.0%} ({self.correct}/{self.judged})" if self.judged else "-"


def _settings(overrides: dict[str, Any]) -> Settings:
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except Exception as exc:  # pydantic's ValidationError names the field and the accepted values
        fail(str(exc), 2)
    configure_logging(settings, err)
    return settings


@bench_app.command("run")
def run(
    dataset: Annotated[list[str], typer.Option(help="medqa, medqa_ext, nejm, nejm_ext, mimiciv, demo, or a case file. Repeat to run several.")],
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder with the AgentClinic files. [default: settings bench.data_dir]")] = None,
    protocol: Annotated[str, typer.Option(help="clinicflow (our doctor, strict measurement, rubric judge) or agentclinic (upstream's protocol, reproduced).")] = "clinicflow",
    limit: Annotated[Optional[int], typer.Option(min=1, help="Only the first N selected cases.")] = None,
    cases: Annotated[Optional[str], typer.Option(help="Cases by 0-based index, range or id: 3,7,9 or 0-4 or medqa:0003.")] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Attempts per case (and bias).")] = 1,
    bias: Annotated[Optional[list[str]], typer.Option(help="none, doctor:<name> or patient:<name>; repeat for several conditions. See `clinicflow bench biases`.")] = None,
    concurrency: Annotated[Optional[int], typer.Option(min=1, help="Attempts in flight. [default: settings, 4]")] = None,
    max_connections: Annotated[Optional[int], typer.Option(min=1, help="Calls in flight per model server. [default: settings, 32]")] = None,
    run_dir: Annotated[Optional[Path], typer.Option(help="The run directory. [default: runs/bench/<dataset>-<protocol>-<config hash>]")] = None,
    force_new: Annotated[bool, typer.Option("--force-new", help="Start the run directory over when its configuration differs (the old run is moved aside).")] = False,
    reasoning: RoleOpt = None,
    patient: RoleOpt = None,
    measurement: RoleOpt = None,
    judge: RoleOpt = None,
    measurement_mode: Annotated[Optional[str], typer.Option(help="strict or agentclinic. [default: the protocol's]")] = None,
    max_turns: Annotated[Optional[int], typer.Option(min=1, help="Doctor turns per case. [default: 20]")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Run seed; each attempt's seed derives from it. [default: 0]")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="[default: 0]")] = None,
    rubric: Annotated[Optional[bool], typer.Option("--rubric/--no-rubric", help="The 5-point rubric judge. [default: on for clinicflow]")] = None,
    cache: Annotated[bool | None, typer.Option("--cache/--no-cache", help="Serve identical model calls from the model-call cache (exact replays). [default: on when --cache-file is given]", show_default=False)] = None,
    cache_file: Annotated[str | None, typer.Option(help="The cache: a SQLite file, or redis://HOST:PORT/DB (rediss:// for TLS) to share it among workers. [default: settings bench.cache_file, else <cache dir>/model-calls.sqlite]")] = None,
    checkpointer: Annotated[Optional[str], typer.Option(help="Keep every attempt's checkpoints in Redis (redis://HOST:PORT/0) or a SQLite file, expiring after settings checkpoint_ttl_minutes. [default: memory, dropped when the attempt ends]")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip malformed case lines instead of stopping.")] = False,
    report: Annotated[bool, typer.Option("--report/--no-report", help="Write report.md and report.html at the end.")] = True,
    queue: Annotated[str | None, typer.Option(help="Distribute the run: enqueue one task per attempt on this Redis (redis://HOST:PORT/DB) for `clinicflow bench worker`s, and return.")] = None,
    follow: Annotated[bool, typer.Option("--follow", help="With --queue: wait, showing progress, and export the run directory when every attempt has a result.")] = False,
    run_id: Annotated[str | None, typer.Option(help="With --queue: the run's id. [default: the run directory's name, so the same command re-enqueues only unfinished attempts]")] = None,
    imaging: Annotated[Optional[str], typer.Option(help="The image reader's model spec (hf:google/medgemma-4b-it, or openai:google/medgemma-4b-it@http://gpu-box:8000/v1); none: images are marked no_reader. [default: settings models.imaging, else none]", show_default=False)] = None,
    image_dir: Annotated[Optional[Path], typer.Option(help="A folder of NEJM case images named by case (nejm-0003.jpg, IC20240111.jpg or 3.jpg), used before the case's URL. [default: settings images.image_dir]", show_default=False)] = None,
    image_setting: Annotated[Optional[str], typer.Option(help="start (every image read at intake, into the doctor's opening context) or request (read when the doctor asks): AgentClinic-NEJM's two settings. [default: settings images.setting, else request]", show_default=False)] = None,
    triage: Annotated[Optional[str], typer.Option(help="A zero-shot classifier spec (hf:google/medsiglip-448) whose scores over the differential are added to each read; needs --imaging. [default: settings images.triage]", show_default=False)] = None,
    download: Annotated[Optional[bool], typer.Option("--download/--no-download", help="Fetch a case's image from its URL when --image-dir has no file for it. [default: settings images.download, else on]", show_default=False)] = None,
    doctor: Annotated[list[str] | None, typer.Option(help="single (the one-node doctor) or panel (the diagnostic panel); repeat or comma-list to compare both, one arm each. [default: single]", show_default=False)] = None,
    variant: Annotated[list[str] | None, typer.Option(help="Panel variants, one arm each (with --doctor panel): no-budget, budgeted, instant, questions, ensemble; repeat or comma-list. [default: no-budget]", show_default=False)] = None,
    budget: Annotated[float | None, typer.Option(min=0.01, help="USD the budgeted panel variant may spend per case (visits and tests); required by --variant budgeted.", show_default=False)] = None,
    ensemble: Annotated[int, typer.Option(min=2, help="Independent panels of the ensemble variant.")] = 3,
    aggregate: Annotated[str, typer.Option(help="How the ensemble combines its panels: mean (average probabilities) or majority (vote on each panel's top diagnosis).")] = "mean",
) -> None:
    """Run every case attempt of a dataset; running the same command again resumes where it stopped."""
    from clinicflow import bench_wiring, wiring
    from graphs.checkpointers import is_redis_url
    from simulations.bench import RunOptions, run_benchmark, write_report

    images = {k: v for k, v in {"image_dir": image_dir, "setting": image_setting, "download": download}.items()
              if v is not None}
    settings = _settings({"max_turns": max_turns, "temperature": temperature, "seed": seed, "images": images or None})
    specs = bench_wiring.run_specs(settings, {"reasoning": reasoning, "patient": patient, "measurement": measurement,
                                              "judge": judge, IMAGE_ROLE: imaging, TRIAGE_ROLE: triage})
    if TRIAGE_ROLE not in specs and wiring.triage_spec(settings, triage):
        err.print("[yellow]note:[/] triage scores are added to image reads, and there is no image reader "
                  "(--imaging): triage is off.")
    choices = bench_wiring.BenchChoices(
        datasets=dataset, protocol=protocol, data_dir=data_dir, limit=limit, cases=cases, repeats=repeats,
        biases=bias or ["none"], measurement_mode=measurement_mode, rubric=rubric, skip_bad=skip_bad,
        # Benchmark runs never pause for a clinician: every arm runs with the approval policy "none".
        doctors=doctor or ["single"], variants=variant or [], budget=budget, ensemble=ensemble, aggregate=aggregate,
    )
    try:
        plan, datasets = bench_wiring.build_plan(settings, choices, specs)
    except (ValueError, LookupError, OSError) as exc:
        fail(str(exc), 2)
    target = run_dir or bench_wiring.default_run_dir(settings, plan)
    # Naming a cache file means using it, unless --no-cache says otherwise.
    use_cache = cache if cache is not None else cache_file is not None
    options = RunOptions(
        concurrency=concurrency or settings.bench.concurrency,
        max_connections=max_connections or settings.bench.max_connections,
        cache_path=(cache_file or settings.call_cache_file) if use_cache else None,
        force_new=force_new,
        # A checkpointer set for consultations is shared only when it is Redis: a SQLite file meant for `consult`
        # would otherwise fill up with every attempt of every run.
        checkpointer=checkpointer or (settings.checkpointer if is_redis_url(settings.checkpointer or "") else None),
        checkpoint_ttl_minutes=settings.checkpoint_ttl_minutes,
        image_store=bench_wiring.image_store_for(settings, plan),
        image_dir=settings.images.image_dir,
        download_images=settings.images.download,
    )
    config = plan.config
    for note in bench_wiring.image_notes(settings, plan, datasets):
        err.print(f"[yellow]note:[/] {escape(note)}")
    console.print(Panel(
        f"[bold]Run directory:[/] {escape(str(target))}\n"
        f"[bold]Protocol:[/] {config.protocol}  [bold]measurement:[/] {config.measurement_mode}  "
        f"[bold]turns:[/] {config.max_turns}  [bold]rubric judge:[/] {'on' if config.rubric else 'off'}\n"
        f"[bold]Cases:[/] {len(plan.cases)} from {', '.join(escape(d.name) for d in datasets)}; "
        f"{config.repeats} repeat(s) x {len(config.biases)} bias condition(s) x {len(config.arms)} arm(s) = "
        f"{len(plan.attempts())} attempts\n"
        f"[bold]Arms:[/] {escape(', '.join(config.arms))}"
        + (f"  [bold]budget:[/] ${config.budget:,.0f}" if config.budget is not None else "")
        + (f"  [bold]ensemble:[/] {config.ensemble_members} panels, {config.ensemble_aggregate}"
           if any(a.endswith(":ensemble") for a in config.arms) else "") + "\n"
        + "\n".join(f"[dim]{role}: {escape(spec)}[/]" for role, spec in config.models.items())
        + f"\n[dim]concurrency {options.concurrency}, {options.max_connections} calls per server; seed "
          f"{config.seed}, temperature {config.temperature}; cache {'on' if options.cache_path else 'off'}[/]"
        + (f"\n[dim]images: read {'at intake' if config.image_setting == 'start' else 'on request'}"
           f"{'' if IMAGE_ROLE in config.models else ' (no reader: marked no_reader)'}; cache "
           f"{escape(str(options.image_store.root))}[/]" if options.image_store is not None else ""),
        title="clinicflow bench run", expand=False,
    ))
    if queue:
        _enqueue(queue, plan, options, run_id or target.name, target, follow)
        return
    if follow:
        fail("--follow goes with --queue", 2)
    with console.status("Preparing models (the first run converts the embedded model once)..."):
        try:
            models = bench_wiring.build_models(settings, specs)
            classifier = bench_wiring.build_classifier(specs)
        except Exception as exc:
            message = user_facing(exc)
            if message is None:
                raise
            fail(message)
    options = dataclasses.replace(options, image_classifier=classifier)
    live = _Live()

    async def main() -> Any:
        with live.progress:
            return await run_benchmark(plan, target, models, options, on_event=live)

    # An unreachable Redis cache, say, ends as a one-line message naming it (password redacted), exit 1.
    summary = run_async(main, interrupted=INTERRUPTED)
    _print_summary(summary)
    if report:
        files = write_report(summary.run_dir)
        console.print(f"[bold]Report:[/] {files.markdown} and {files.html}")
    if summary.errors:
        err.print(f"[yellow]{summary.errors} attempt(s) ended in an error (reasons in results.jsonl, tracebacks in "
                  f"errors.log); run the same command again to retry them.[/]")


def _print_summary(summary: Any) -> None:
    table = Table(title=f"Run {summary.run_id}")
    for column in ("planned", "done before", "finished now", "errors now", "accuracy", "wall", "cache hits"):
        table.add_column(column)
    accuracy = f"{summary.correct}/{summary.judged} = {summary.correct / summary.judged:.1%}" if summary.judged else "-"
    calls = summary.cache_hits + summary.cache_misses
    hits = f"{summary.cache_hits}/{calls}" if calls else "-"
    table.add_row(str(summary.planned), str(summary.skipped), str(summary.finished), str(summary.errors),
                  accuracy, f"{summary.wall_seconds:.1f} s", hits)
    console.print(table)
    _print_arms(summary.results)
    statuses = Counter(r.image_status for r in summary.results if r.image_status)
    if statuses:
        # Attempts whose image could not be had are not image-aware results: give the accuracy without them too.
        seen = [r for r in summary.results if r.status == "ok" and r.correct is not None
                and r.image_status != "unavailable"]
        right = sum(bool(r.correct) for r in seen)
        without = f"{right}/{len(seen)} = {right / len(seen):.1%}" if seen else "-"
        console.print("[bold]Images:[/] " + ", ".join(f"{n} {escape(s)}" for s, n in sorted(statuses.items()))
                      + f"; accuracy without unavailable images {without}")


def _print_arms(results: list[Any]) -> None:
    """Accuracy and mean cost per arm, when the run compares several."""
    arms = list(dict.fromkeys(r.arm for r in results))
    if len(arms) < 2:
        return
    table = Table(title="Arms")
    for column in ("arm", "attempts", "accuracy", "mean cost"):
        table.add_column(column)
    for arm in arms:
        mine = [r for r in results if r.arm == arm and r.status == "ok"]
        judged = [r for r in mine if r.correct is not None]
        right = sum(bool(r.correct) for r in judged)
        accuracy = f"{right}/{len(judged)} = {right / len(judged):.1%}" if judged else "-"
        cost = f"${sum(r.cost for r in mine) / len(mine):,.0f}" if mine else "-"
        table.add_row(escape(arm), str(len(mine)), accuracy, cost)
    console.print(table)


@bench_app.command("report")
def report(run_dir: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """Write report.md and a self-contained report.html (plots, case table, readable transcripts)."""
    from simulations.bench import RunDirError, write_report

    try:
        files = write_report(run_dir)
    except RunDirError as exc:
        fail(str(exc))
    for problem in files.problems:
        err.print(f"[yellow]warning:[/] {escape(problem)}")
    console.print(f"Wrote {files.markdown}, {files.html} and {files.transcripts} transcript pages.")


@bench_app.command("compare")
def compare(
    run_a: Annotated[Path, typer.Argument(help="The baseline run directory.")],
    run_b: Annotated[Path, typer.Argument(help="The run compared with it.")],
) -> None:
    """Pair the attempts of two runs and test the difference in accuracy (McNemar)."""
    from simulations.bench import RunDirError, compare_runs, render_comparison

    try:
        comparison = compare_runs(run_a, run_b)
    except RunDirError as exc:
        fail(str(exc))
    console.print(render_comparison(comparison), markup=False, highlight=False)


@bench_app.command("biases")
def biases() -> None:
    """List the bias conditions (AgentClinic's 12 doctor and 11 patient biases)."""
    from simulations.protocols import doctor_bias_names, patient_bias_names

    console.print("none", markup=False)
    for name in doctor_bias_names():
        console.print(f"doctor:{name}", markup=False)
    for name in patient_bias_names():
        console.print(f"patient:{name}", markup=False)


# ---------------- distributed runs (Celery workers on one Redis) ----------------

FOLLOW_POLL_S = 1.0


def _enqueue(queue: str, plan: Any, options: Any, run_id: str, target: Path, follow: bool) -> None:
    import sys

    from simulations.bench.config import RunEnvironment
    from simulations.bench.distributed import QueueError, RunRecord, enqueue
    from simulations.bench.rediscache import redact_url

    cache = str(options.cache_path) if options.cache_path else None
    if cache and not cache.startswith(("redis://", "rediss://")):
        err.print("[yellow]note:[/] a SQLite cache is not shared by workers; use --cache-file redis://... for that.")
        cache = None
    environment = RunEnvironment(max_connections=options.max_connections,
                                 cache=redact_url(cache) if cache else None,
                                 command=[redact_url(arg) for arg in sys.argv])
    record = RunRecord(run_id=run_id, plan=plan, environment=environment, max_connections=options.max_connections,
                       cache_url=cache)
    try:
        sent = enqueue(record, queue)
    except QueueError as exc:
        fail(str(exc))
    shown = redact_url(queue)
    console.print(f"[bold]Run id:[/] {escape(run_id)}: {len(sent)} attempt(s) enqueued of {len(plan.attempts())}")
    if not follow:
        console.print(f"Start workers:  clinicflow bench worker --queue {escape(shown)} --concurrency 8\n"
                      f"Progress:       clinicflow bench status {escape(run_id)} --queue {escape(shown)}\n"
                      f"Export:         clinicflow bench export {escape(run_id)} --queue {escape(shown)} "
                      f"--run-dir {escape(str(target))}")
        return
    _follow(queue, run_id, target)


def _follow(queue: str, run_id: str, target: Path) -> None:
    import time

    from simulations.bench import write_report
    from simulations.bench.distributed import QueueError, RunStore, export_run

    store = RunStore(queue)
    live = _Live()
    try:
        with live.progress:
            status = store.status(run_id)
            live.task = live.progress.add_task("attempts", total=status.planned, completed=0, errors=0, accuracy="-")
            while True:
                status = store.status(run_id)
                live.errors, live.judged, live.correct = status.failed, status.judged, status.correct
                live.progress.update(live.task, completed=status.done, errors=status.failed,
                                     accuracy=live._accuracy())
                if status.done >= status.planned:
                    break
                time.sleep(FOLLOW_POLL_S)
        summary = export_run(queue, run_id, target)
    except QueueError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        err.print("[yellow]Stopped following; the workers go on. Export later with `clinicflow bench export`.[/]")
        raise typer.Exit(130) from None
    finally:
        store.close()
    console.print(f"Exported {summary.written} new result(s) to {escape(str(summary.run_dir))}")
    files = write_report(summary.run_dir)
    console.print(f"[bold]Report:[/] {files.markdown} and {files.html}")


@bench_app.command("worker")
def worker(
    queue: Annotated[str, typer.Option(help="The queue's Redis: redis://HOST:PORT/DB.")],
    concurrency: Annotated[int, typer.Option(min=1, help="Attempts this worker runs at once (all on one event loop, as the local runner).")] = 4,
    visibility_timeout: Annotated[float, typer.Option(min=1, help="Seconds after which a task whose worker died is delivered again; must exceed the slowest attempt.")] = 3600.0,
) -> None:
    """Run attempts of distributed runs from the queue until stopped (Ctrl-C finishes the attempts in flight)."""
    from clinicflow import bench_wiring
    from simulations.bench.distributed import QueueError, run_worker

    settings = _settings({})
    try:
        run_worker(queue, bench_wiring.worker_model_factory(settings), concurrency=concurrency,
                   visibility_timeout=visibility_timeout, images=bench_wiring.worker_images(settings))
    except QueueError as exc:
        fail(str(exc))


@bench_app.command("status")
def status(
    run_id: Annotated[str, typer.Argument(help="The run id printed by `bench run --queue`.")],
    queue: Annotated[str, typer.Option(help="The queue's Redis: redis://HOST:PORT/DB.")],
) -> None:
    """Done, running, queued and failed attempts of a distributed run, and each worker's throughput."""
    from simulations.bench.distributed import QueueError, RunStore

    store = RunStore(queue)
    try:
        store.ping()
        state = store.status(run_id)
    except QueueError as exc:
        fail(str(exc))
    finally:
        store.close()
    table = Table(title=f"Run {state.run_id}")
    for column in ("planned", "done", "running", "queued", "failed", "accuracy"):
        table.add_column(column)
    accuracy = f"{state.correct}/{state.judged} = {state.correct / state.judged:.1%}" if state.judged else "-"
    table.add_row(str(state.planned), str(state.done), str(state.running), str(state.queued), str(state.failed),
                  accuracy)
    console.print(table)
    workers = Table(title="Workers")
    for column in ("worker", "finished", "attempts/min", "last finished"):
        workers.add_column(column)
    for item in state.workers:
        workers.add_row(escape(item.worker), str(item.finished), f"{item.per_minute:.1f}", item.last)
    console.print(workers)


@bench_app.command("export")
def export(
    run_id: Annotated[str, typer.Argument(help="The run id printed by `bench run --queue`.")],
    queue: Annotated[str, typer.Option(help="The queue's Redis: redis://HOST:PORT/DB.")],
    run_dir: Annotated[Path, typer.Option(help="The run directory to write (or bring up to date).")],
) -> None:
    """Write a distributed run's results and transcripts to a run directory (for `bench report` and `compare`)."""
    from simulations.bench import ConfigMismatchError, RunDirError
    from simulations.bench.distributed import QueueError, export_run

    try:
        summary = export_run(queue, run_id, run_dir)
    except (QueueError, RunDirError, ConfigMismatchError) as exc:
        fail(str(exc))
    console.print(f"Exported {summary.written} new result(s) to {escape(str(summary.run_dir))} "
                  f"({summary.already} already there, {summary.missing} of {summary.planned} not finished yet).")
