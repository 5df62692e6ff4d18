"""``clinicflow fhir``: find patients, summarise a record, ask a question of it, or serve demo records locally.

Every command reads from the FHIR server named by ``--base-url``, the settings, or a running
``clinicflow fhir serve``; auth comes from the settings (``CLINICFLOW_FHIR__AUTH`` and friends), never from a
command-line token that would land in shell history unless the user insists (``--token``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table

from clinicflow.errors import user_facing
from clinicflow.logs import configure_logging
from clinicflow.settings import Settings
from clinicflow.terminal import console, err, fail, run_async

fhir_app = typer.Typer(help="Patient records over FHIR R4: find, summarise, ask, serve.", no_args_is_help=True)

BaseUrlOpt = Annotated[Optional[str], typer.Option(
    "--base-url", help="FHIR R4 base URL. [default: settings, else a running `clinicflow fhir serve`]")]
AuthOpt = Annotated[Optional[str], typer.Option(help="none, bearer or smart. [default: settings]")]
TokenOpt = Annotated[Optional[str], typer.Option(
    help="Bearer token (prefer CLINICFLOW_FHIR__TOKEN: options end up in shell history).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
NowOpt = Annotated[Optional[str], typer.Option(help="The date questions and ages are relative to (YYYY-MM-DD). [default: today]")]


def _settings(auth: str | None, token: str | None) -> Settings:
    fhir: dict[str, Any] = {}
    if auth:
        fhir["auth"] = auth
    if token:
        fhir["auth"] = auth or "bearer"
        fhir["token"] = token
    try:
        settings = Settings()
        if fhir:
            settings.fhir = type(settings.fhir).model_validate({**settings.fhir.model_dump(), **fhir})
    except Exception as exc:  # pydantic names the field and the accepted values
        fail(str(exc), 2)
    configure_logging(settings, err)
    return settings


def _base_url(settings: Settings, override: str | None) -> str:
    from clinicflow.fhir_wiring import resolve_base_url

    base = resolve_base_url(settings, override)
    if base is None:
        fail("no FHIR server: pass --base-url, set CLINICFLOW_FHIR__BASE_URL, or start one with "
             "`clinicflow fhir serve` (demo records) in another terminal", 2)
    return base


def _now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time())
    except ValueError:
        fail(f"--now {value!r} is not a date (YYYY-MM-DD)", 2)


def _to_json(value: Any) -> str:
    def default(obj: Any) -> Any:
        if isinstance(obj, BaseModel):
            return obj.model_dump(mode="json")
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return dataclasses.asdict(obj)
        if isinstance(obj, (date, datetime)):
            return obj.isoformat()
        return str(obj)

    return json.dumps(value, default=default, indent=2, ensure_ascii=False)


def _human_name(patient: dict[str, Any]) -> str:
    for name in patient.get("name") or []:
        if isinstance(name, dict):
            text = name.get("text") or " ".join([*(name.get("given") or []), name.get("family") or ""]).strip()
            if text:
                return str(text)
    return ""


@fhir_app.command()
def patients(
    name: Annotated[Optional[str], typer.Option(help="Part of a name (FHIR `name` search).")] = None,
    identifier: Annotated[Optional[str], typer.Option(help="An identifier, `system|value` or `value`.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    base_url: BaseUrlOpt = None,
    auth: AuthOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find patients by name or identifier (without either: the first --limit patients)."""
    from clinicflow.fhir_wiring import open_fhir_client

    settings = _settings(auth, token)
    base = _base_url(settings, base_url)
    params = {"_count": str(min(limit, 100))}
    if name:
        params["name"] = name
    if identifier:
        params["identifier"] = identifier

    async def work() -> tuple[list[dict[str, Any]], bool]:
        async with open_fhir_client(settings, base) as client:
            result = await client.search("Patient", params, max_resources=limit)
            return [r.raw for r in result.resources][:limit], result.truncated

    found, more = run_async(work)
    if as_json:
        console.print_json(_to_json(found))
        return
    table = Table(title=f"{len(found)} patients at {escape(base)}")
    for column in ("id", "name", "gender", "birth date", "identifier"):
        table.add_column(column, overflow="fold")
    for patient in found:
        ident = next((i.get("value", "") for i in patient.get("identifier") or [] if isinstance(i, dict)), "")
        table.add_row(escape(str(patient.get("id", ""))), escape(_human_name(patient)),
                      escape(str(patient.get("gender", ""))), escape(str(patient.get("birthDate", ""))),
                      escape(str(ident)))
    console.print(table)
    if more:
        console.print(f"[dim]More patients match; raise --limit (now {limit}) or narrow the search.[/]")


@fhir_app.command()
def summary(
    patient: Annotated[str, typer.Argument(help="The Patient id.")],
    tokens: Annotated[int, typer.Option(min=50, help="Token budget of the text; the least recent detail goes first.")] = 4000,
    now: NowOpt = None,
    base_url: BaseUrlOpt = None,
    auth: AuthOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The patient's record as a compact clinical snapshot, every line citing its source (no model involved)."""
    from clinicflow.fhir_wiring import open_fhir_client
    from tools.records import build_snapshot, render_snapshot

    settings = _settings(auth, token)
    base = _base_url(settings, base_url)
    moment = _now(now)

    async def work() -> tuple[Any, int, list[str], int]:
        async with open_fhir_client(settings, base) as client:
            record = await client.everything(patient)
            return build_snapshot(record.raw(), now=moment), len(record.all()), record.warnings, client.round_trips

    with console.status(f"Fetching Patient/{patient}..."):
        snapshot, count, warnings, trips = run_async(work)
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if as_json:
        console.print_json(_to_json({"patient": patient, "resources": count, "counts": snapshot.counts(),
                                     "snapshot": snapshot}))
        return
    console.print(render_snapshot(snapshot, token_budget=tokens), markup=False, highlight=False, soft_wrap=True)
    console.print(f"[dim]{count} resources in {trips} requests from {escape(base)}[/]")


@fhir_app.command()
def ask(
    patient: Annotated[str, typer.Argument(help="The Patient id.")],
    question: Annotated[str, typer.Argument(help='E.g. "latest HbA1c and its trend since 2020".')],
    now: NowOpt = None,
    reasoning: Annotated[Optional[str], typer.Option(help="Model spec for the navigator. [default: settings]")] = None,
    base_url: BaseUrlOpt = None,
    auth: AuthOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from the patient's record, citing [Type/id] for every fact (citations are checked)."""
    from clinicflow import fhir_wiring, wiring

    settings = _settings(auth, token)
    base = _base_url(settings, base_url)
    moment = _now(now)
    spec = reasoning or settings.models.reasoning
    with console.status("Preparing the model (the first run converts the embedded model once)..."):
        model = wiring.build_role_models(settings, {"reasoning": spec})["reasoning"]

    async def work() -> Any:
        return await fhir_wiring.ask_record(settings, base, patient, question, model, now=moment)

    with console.status(f"Reading Patient/{patient} and answering..."):
        answer = run_async(work)
    if as_json:
        console.print_json(_to_json(answer))
        return
    console.print(escape(answer.answer))
    if answer.dropped_citations:
        err.print(f"[yellow]dropped citations not in the fetched record:[/] {escape(', '.join(answer.dropped_citations))}")
    flags = " [red](model answer unusable: extractive fallback)[/]" if answer.degraded else ""
    console.print(f"[dim]{len(answer.citations)} citations checked; {answer.fact_count} facts from "
                  f"{escape(', '.join(answer.types_fetched) or 'nothing')}; {answer.model_calls} model calls[/]{flags}")


@fhir_app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8090,
    data_dir: Annotated[Optional[Path], typer.Option(help="Where the server keeps its store. [default: user data dir]")] = None,
    bundles: Annotated[Optional[list[Path]], typer.Option("--bundles", help="More FHIR transaction bundles to load: files or folders (e.g. Synthea output); ids are kept.")] = None,
    demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Load the demo cases' patients.")] = True,
) -> None:
    """Run a local FHIR R4 server (sekmet-fhir on 127.0.0.1) with the demo patients loaded, until Ctrl-C."""
    from clinicflow.fhir_wiring import announce_server, withdraw_announcement
    from simulations.demo_records import demo_record_bundles
    from tools.fhirserver.sekmet import SekmetServer

    settings = Settings()
    store = data_dir or settings.fhir_server_dir / "store"
    sources: list[Any] = list(demo_record_bundles()) if demo else []
    for path in bundles or []:
        sources += sorted(path.glob("*.json")) if path.is_dir() else [path]
    server = SekmetServer(store, port=port or None)
    try:
        with console.status(f"Starting the FHIR server (store: {store})..."):
            server.start()
        with console.status(f"Loading {len(sources)} bundles..."):
            report = server.load(sources) if sources else None
    except BaseException as exc:
        server.stop()  # never leave a half-started server behind, whatever went wrong
        if isinstance(exc, KeyboardInterrupt):
            raise typer.Exit(130) from None
        message = user_facing(exc) if isinstance(exc, Exception) else None
        if message is None:
            raise
        fail(message)
    announce_server(settings, server.base_url, os.getpid())
    loaded = "already loaded" if report is None else report.summary()
    console.print(f"[bold green]FHIR server ready:[/] {server.base_url}\n[dim]{escape(loaded)}[/]")
    if demo:
        console.print("Demo patients: " + ", ".join(f"demo-{c}" for c in _demo_slugs()))
        console.print("Try: [bold]clinicflow fhir summary demo-chest-pain[/] or "
                      "[bold]clinicflow consult --case demo:chest-pain[/] (uses this server while it runs).")
    console.print("[dim]Ctrl-C to stop.[/]")
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        withdraw_announcement(settings, os.getpid())
        server.stop()
    console.print("[dim]FHIR server stopped.[/]")


def _demo_slugs() -> list[str]:
    from simulations.cases import demo_cases

    return [c.slug or c.id for c in demo_cases()]
