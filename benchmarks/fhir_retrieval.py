"""Time and HTTP round trips to fetch each patient's whole record and build its snapshot: our client against a naive one.

Starts sekmet-fhir on 127.0.0.1 (free port, temporary store, stopped at the end), loads the Synthea bundles of
../shared/data/synthea/bundles with their ids kept, then for every patient fetches the record and builds
`tools.records.build_snapshot` from it:

- ours: `FhirClient.everything()`, i.e. Patient/$everything (page size 200) where the CapabilityStatement lists it;
  the same call with ``strategy="searches"`` takes the client's other path (the Patient plus concurrent
  `patient=` searches per type of `PATIENT_COMPARTMENT_TYPES`), so both strategies are timed;
- naive: plain httpx, one request at a time, the way typical FHIR clients and the EHR navigator do it: the Patient,
  then one `Type?patient=ID` search per type of `PATIENT_COMPARTMENT_TYPES` at the server's default page size,
  following every `next` link in turn; no validation.

Ours runs without validation (as the naive one does) and, in a second row, with it (the client's default). Each
pass runs once unmeasured, then --repeat times, passes interleaved; figures are medians. Resource counts per type
must be identical over the types both sides searched (a type $everything leaves out is reported, not failed: the
server decides what $everything returns). Exit 0: counts identical (whether or not the 3x target is met);
1: counts differ; 2: no Synthea data or bad arguments; 3: the server or a request failed.

    python benchmarks/fhir_retrieval.py [--repeat 3] [--limit N] [--patients ID,ID] [--bundles DIR]
    python benchmarks/fhir_retrieval.py --base-url http://127.0.0.1:8080/fhir [--patients ID,ID]   # no auth
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from tools.fhir import PATIENT_COMPARTMENT_TYPES, ClientLimits, FhirClient
from tools.fhir.errors import FhirError
from tools.fhir.validation import clear_validation_cache
from tools.fhirserver import FhirServerError, SekmetServer, load_bundles
from tools.records import build_snapshot

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUNDLES = REPO_ROOT.parent / "shared" / "data" / "synthea" / "bundles"
NAIVE_TYPES: tuple[str, ...] = ("Patient", *PATIENT_COMPARTMENT_TYPES)
TARGET_SPEEDUP = 3.0
NAIVE_MAX_PAGES = 1000  # the naive client follows every page; this only keeps a looping server from hanging the run
EVERYTHING, PER_TYPE, NAIVE = "ours $everything", "ours per-type", "naive"
VALIDATED, VALIDATED_CACHED = "ours $everything +validation", "ours $ev. +valid. (cached)"


@dataclass
class PatientRun:
    """One patient's record fetched and summarised once by one strategy."""

    seconds: float
    round_trips: int
    counts: Counter[str]
    foreign: Counter[str]  # resources whose subject/patient is another patient, per type
    snapshot_items: int
    name: str = ""
    snapshot_seconds: float = 0.0  # the build_snapshot part of `seconds`


@dataclass
class Pass:
    """One strategy over every patient once."""

    seconds: float
    runs: dict[str, PatientRun]
    warnings: list[str] = field(default_factory=list)
    searched: frozenset[str] | None = None  # the types it asked for; None: whatever the server's $everything holds


# ---------------- the strategies ----------------


class DelayedAsyncTransport(httpx.AsyncBaseTransport):
    """Adds a fixed delay before each request: a remote server's round-trip time, for --latency-ms."""

    def __init__(self, delay_s: float, limits: ClientLimits) -> None:
        self._delay = delay_s
        n = limits.max_concurrency
        self._inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=n, max_keepalive_connections=n))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self._delay)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class DelayedTransport(httpx.BaseTransport):
    """The blocking twin of `DelayedAsyncTransport`, for the naive client."""

    def __init__(self, delay_s: float) -> None:
        self._delay = delay_s
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        time.sleep(self._delay)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _record_facts(resources: list[dict[str, Any]], patient_id: str) -> tuple[Counter[str], Counter[str], str]:
    counts: Counter[str] = Counter(str(r.get("resourceType")) for r in resources)
    foreign: Counter[str] = Counter()
    name = ""
    for raw in resources:
        if raw.get("resourceType") == "Patient" and raw.get("id") == patient_id:
            first = (raw.get("name") or [{}])[0]
            name = " ".join([*(first.get("given") or [])[:1], first.get("family") or ""]).strip()
        for key in ("subject", "patient"):
            ref = raw.get(key)
            reference = ref.get("reference") if isinstance(ref, dict) else None
            if isinstance(reference, str) and "Patient/" in reference:
                if reference.rsplit("/", 1)[-1] != patient_id:
                    foreign[str(raw.get("resourceType"))] += 1
                break
    return counts, foreign, name


def _patient_run(resources: list[dict[str, Any]], patient_id: str, started: float, trips: int) -> PatientRun:
    fetched = time.perf_counter()
    snapshot = build_snapshot(resources)
    done = time.perf_counter()
    counts, foreign, name = _record_facts(resources, patient_id)
    return PatientRun(done - started, trips, counts, foreign, len(snapshot.items()), name, done - fetched)


async def ours_pass(
    base_url: str, patient_ids: Sequence[str], *, per_type: bool, validate: bool, latency_s: float
) -> Pass:
    """One long-lived client (as the application uses it) fetches every patient in turn."""
    runs: dict[str, PatientRun] = {}
    warnings: list[str] = []
    limits = ClientLimits()
    transport = DelayedAsyncTransport(latency_s, limits) if latency_s else None
    started = time.perf_counter()
    async with FhirClient(base_url, validate=validate, limits=limits, transport=transport) as client:
        for patient_id in patient_ids:
            t0, trips0 = time.perf_counter(), client.round_trips
            result = await client.everything(patient_id, strategy="searches" if per_type else "auto")
            warnings += result.warnings
            if result.truncated:
                warnings.append(f"TRUNCATED record of {patient_id} (limits reached)")
            runs[patient_id] = _patient_run(result.raw(), patient_id, t0, client.round_trips - trips0)
        seconds = time.perf_counter() - started
        # The fallback searches only the types the CapabilityStatement lists (all of them if it lists none).
        offered = await client.resource_types()
        searched = frozenset(t for t in NAIVE_TYPES if not offered or t in offered) if per_type else None
    return Pass(seconds, runs, warnings, searched)


def _naive_get(http: httpx.Client, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
    response = http.get(url, params=params)
    response.raise_for_status()
    return response.json()


def naive_record(http: httpx.Client, patient_id: str) -> tuple[list[dict[str, Any]], int]:
    """The patient, then each type's search with every `next` page, one request at a time."""
    resources = [_naive_get(http, f"Patient/{patient_id}")]
    trips = 1
    for resource_type in PATIENT_COMPARTMENT_TYPES:
        url: str | None = resource_type
        params: dict[str, str] | None = {"patient": patient_id}
        pages = 0
        while url is not None:
            bundle = _naive_get(http, url, params)
            trips, pages = trips + 1, pages + 1
            resources += [e["resource"] for e in bundle.get("entry") or []
                          if "resource" in e and (e.get("search") or {}).get("mode") != "outcome"]
            url = next((link["url"] for link in bundle.get("link") or [] if link.get("relation") == "next"), None)
            params = None
            if pages >= NAIVE_MAX_PAGES and url is not None:
                raise RuntimeError(f"naive client: {resource_type} search still paging after {pages} pages")
    return resources, trips


def naive_pass(base_url: str, patient_ids: Sequence[str], latency_s: float) -> Pass:
    runs: dict[str, PatientRun] = {}
    started = time.perf_counter()
    headers = {"Accept": "application/fhir+json"}
    transport = DelayedTransport(latency_s) if latency_s else None
    with httpx.Client(base_url=base_url, headers=headers, timeout=30.0, trust_env=False, transport=transport) as http:
        for patient_id in patient_ids:
            t0 = time.perf_counter()
            resources, trips = naive_record(http, patient_id)
            runs[patient_id] = _patient_run(resources, patient_id, t0, trips)
    return Pass(time.perf_counter() - started, runs, searched=frozenset(NAIVE_TYPES))


async def run_strategy(name: str, base_url: str, patient_ids: Sequence[str], latency_s: float) -> Pass:
    if name == NAIVE:
        return naive_pass(base_url, patient_ids, latency_s)
    if name == VALIDATED:
        clear_validation_cache()
    validate = name in (VALIDATED, VALIDATED_CACHED)
    return await ours_pass(base_url, patient_ids, per_type=name == PER_TYPE, validate=validate, latency_s=latency_s)


async def measure(
    names: Sequence[str], base_url: str, patient_ids: Sequence[str], repeat: int, latency_s: float = 0.0
) -> dict[str, list[Pass]]:
    """A warm-up pass of each strategy, then `repeat` rounds of them all, interleaved so that drift in the machine's
    load hits every strategy alike, and rotated so that none is always the one after the naive pass."""
    for name in names:
        await run_strategy(name, base_url, patient_ids, latency_s)
    passes: dict[str, list[Pass]] = {name: [] for name in names}
    for round_ in range(repeat):
        shift = round_ % len(names)
        for name in [*names[shift:], *names[:shift]]:
            passes[name].append(await run_strategy(name, base_url, patient_ids, latency_s))
    return passes


# ---------------- comparing and reporting ----------------


def compare_counts(
    passes: dict[str, list[Pass]], patient_ids: Sequence[str]
) -> tuple[list[str], list[str], set[str]]:
    """(failures, notes, types compared): a failure is a type both sides searched with different counts."""
    failures: list[str] = []
    compared: set[str] = set()
    only: dict[tuple[str, str], Counter[str]] = {}
    naive = passes[NAIVE]
    for name, runs in passes.items():
        if name == NAIVE:
            continue
        for ours_pass_, naive_pass_ in zip(runs, naive, strict=True):
            for pid in patient_ids:
                a, b = ours_pass_.runs[pid].counts, naive_pass_.runs[pid].counts
                for rtype in sorted(set(a) | set(b)):
                    if rtype not in NAIVE_TYPES:
                        only.setdefault((name, "not searched by naive"), Counter())[rtype] += a[rtype]
                    elif a[rtype] == b[rtype]:
                        compared.add(rtype)
                    elif ours_pass_.searched is not None and rtype not in ours_pass_.searched:
                        why = "not searched by ours (absent from the CapabilityStatement), got by naive"
                        only.setdefault((name, why), Counter())[rtype] += b[rtype]
                    elif ours_pass_.searched is None and a[rtype] == 0:  # the server chose what $everything holds
                        only.setdefault((name, "absent from $everything, got by naive"), Counter())[rtype] += b[rtype]
                    else:
                        failures.append(f"{name} vs naive, patient {pid}, {rtype}: {a[rtype]} vs {b[rtype]}")
    reps = len(naive)
    grouped: dict[str, list[str]] = {}  # the same finding for several strategies is printed once
    for (name, why), types in only.items():
        grouped.setdefault(f"{why}: " + ", ".join(f"{t} {n // reps}" for t, n in sorted(types.items())), []).append(name)
    notes = [f"{' / '.join(names)}: {text}" for text, names in grouped.items()]
    return sorted(set(failures)), notes, compared


def _median_total(passes: list[Pass]) -> float:
    return statistics.median(p.seconds for p in passes)


def _median_patient(passes: list[Pass], pid: str) -> float:
    return statistics.median(p.runs[pid].seconds for p in passes)


def _trips(passes: list[Pass]) -> int:
    return sum(r.round_trips for r in passes[-1].runs.values())


def _resources(passes: list[Pass]) -> int:
    return sum(sum(r.counts.values()) for r in passes[-1].runs.values())


def print_tables(passes: dict[str, list[Pass]], patient_ids: Sequence[str]) -> None:
    ours = next(n for n in passes if n != NAIVE)
    naive = passes[NAIVE]
    cols = [n for n in passes if n not in (VALIDATED, VALIDATED_CACHED)]
    print("\nper patient (median wall ms; resources and round trips of one run)")
    print(f"{'patient':<28} " + " ".join(f"{n[:17]:>17}" for n in cols) + f" {'speedup':>8}  {'resources':>13}  trips")
    for pid in patient_ids:
        label = f"{pid[:8]} {naive[-1].runs[pid].name}"[:28]
        ms = " ".join(f"{_median_patient(passes[n], pid) * 1000:>17.1f}" for n in cols)
        speed = _median_patient(naive, pid) / _median_patient(passes[ours], pid)
        res = "/".join(str(sum(passes[n][-1].runs[pid].counts.values())) for n in (ours, NAIVE))
        trips = "/".join(str(passes[n][-1].runs[pid].round_trips) for n in cols)
        print(f"{label:<28} {ms} {speed:>7.2f}x  {res:>13}  {trips}")
    print(f"\n{'strategy':<30} {'wall s':>8} {'ms/patient':>10} {'of it snapshot':>14} {'round trips':>11} "
          f"{'resources':>9} {'snapshot lines':>14}")
    for name, runs in passes.items():
        lines = sum(r.snapshot_items for r in runs[-1].runs.values())
        total = _median_total(runs)
        snap = statistics.median(sum(r.snapshot_seconds for r in p.runs.values()) for p in runs)
        per_patient = 1000 / len(patient_ids)
        print(f"{name:<30} {total:>8.3f} {total * per_patient:>10.1f} {snap * per_patient:>14.1f} {_trips(runs):>11} "
              f"{_resources(runs):>9} {lines:>14}")
    print("\nresources per type, all patients (one run)")
    types = sorted({t for runs in passes.values() for r in runs[-1].runs.values() for t in r.counts})
    print(f"{'type':<22} " + " ".join(f"{n[:17]:>17}" for n in cols))
    for rtype in types:
        counts = [sum(r.counts[rtype] for r in passes[n][-1].runs.values()) for n in cols]
        print(f"{rtype:<22} " + " ".join(f"{c:>17}" for c in counts))


def print_ratios(passes: dict[str, list[Pass]]) -> None:
    ours = next(n for n in passes if n != NAIVE)
    naive_s, naive_trips = _median_total(passes[NAIVE]), _trips(passes[NAIVE])
    ours_s, ours_trips = _median_total(passes[ours]), _trips(passes[ours])
    speed = naive_s / ours_s
    print(f"\nwall time: ours {ours_s:.3f} s vs naive {naive_s:.3f} s -> {speed:.2f}x faster "
          f"(target >= {TARGET_SPEEDUP:g}x) {'MET' if speed >= TARGET_SPEEDUP else 'NOT MET'}   [ours = {ours}]")
    print(f"round trips: ours {ours_trips} vs naive {naive_trips} (target: fewer) "
          f"{'MET' if ours_trips < naive_trips else 'NOT MET'}")
    for name, runs in passes.items():
        if name not in (ours, NAIVE):
            s, trips = _median_total(runs), _trips(runs)
            print(f"  {name}: {s:.3f} s -> {naive_s / s:.2f}x faster than naive; round trips {trips}")


# ---------------- server, patients, main ----------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES, help="Synthea transaction bundles (*.json)")
    parser.add_argument("--base-url", help="use this running FHIR server instead of starting sekmet-fhir (no auth)")
    parser.add_argument("--patients", help="comma-separated patient ids (default: every patient loaded or found)")
    parser.add_argument("--limit", type=int, help="only the first N patients (and bundles)")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs after the warm-up (median reported)")
    parser.add_argument("--everything", choices=("on", "off", "both"), default="both",
                        help="time our client via $everything, via its per-type fallback, or both")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="add this delay before every request of both clients (a remote server's round trip)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or (args.limit is not None and args.limit < 1) or args.latency_ms < 0:
        parser.error("--repeat and --limit must be at least 1, --latency-ms not negative")
    return args


def _choose(found: Sequence[str], args: argparse.Namespace) -> list[str]:
    chosen = [p.strip() for p in args.patients.split(",") if p.strip()] if args.patients else list(found)
    return chosen[: args.limit] if args.limit else chosen


async def _server_patients(base_url: str) -> list[str]:
    async with FhirClient(base_url, validate=False) as client:
        result = await client.search("Patient", {"_count": "200", "_elements": "id"})
    return [r.id for r in result.resources if r.id]


def _strategies(mode: str) -> list[str]:
    everything = [EVERYTHING, VALIDATED, VALIDATED_CACHED]
    ours = {"on": everything, "off": [PER_TYPE], "both": [*everything, PER_TYPE]}[mode]
    return [*ours, NAIVE]


def _machine_notes(args: argparse.Namespace) -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    latency = f"; {args.latency_ms:g} ms added before every request" if args.latency_ms else "; loopback, no added latency"
    return (f"machine: {cores} CPU cores, shared (the server, its SQLite store and the client run on them; other jobs "
            f"may too{load}), Python {platform.python_version()}, httpx {version('httpx')}; median of {args.repeat} "
            f"run(s) after one warm-up{latency}; the naive client keeps its connection alive (kinder to it than one "
            "per request); +validation clears the client's verdict cache first, (cached) shows a re-fetch")


def _report(passes: dict[str, list[Pass]], patient_ids: Sequence[str], args: argparse.Namespace) -> int:
    print_tables(passes, patient_ids)
    failures, notes, compared = compare_counts(passes, patient_ids)
    for name, runs in passes.items():
        foreign = sum((r.foreign for r in runs[-1].runs.values()), Counter())
        if foreign:
            print(f"NOTE {name}: resources naming ANOTHER patient: "
                  + ", ".join(f"{t} {n}" for t, n in sorted(foreign.items())))
        for warning, times in sorted(Counter(runs[-1].warnings).items())[:5]:
            print(f"NOTE {name}: client warning ({times}x): {warning}")
    for note in notes:
        print(f"NOTE {note}")
    print_ratios(passes)
    print(_machine_notes(args))
    if failures:
        print(f"\n!!! RESOURCE COUNTS DIFFER ({len(failures)}):", *failures[:30], sep="\n!!! ")
        return 1
    print(f"counts: identical per type for {len(patient_ids)} patients in every run, over the types both sides "
          f"searched: {', '.join(sorted(compared))}")
    return 0


async def _run(args: argparse.Namespace) -> int:
    names = _strategies(args.everything)
    if args.base_url:
        patient_ids = _choose(await _server_patients(args.base_url), args)
        print(f"FHIR retrieval benchmark against {args.base_url} (existing server), {len(patient_ids)} patients")
        passes = await measure(names, args.base_url, patient_ids, args.repeat, args.latency_ms / 1000)
        return _report(passes, patient_ids, args)
    paths = sorted(args.bundles.glob("*.json")) if args.bundles.is_dir() else []
    if not paths:
        print(f"no Synthea bundles (*.json) at {args.bundles}: ../shared/data is absent here; "
              "pass --bundles DIR or --base-url URL", file=sys.stderr)
        return 2
    if args.limit and not args.patients:
        paths = paths[: args.limit]
    with SekmetServer() as server:
        report = load_bundles(server.base_url, paths, concurrency=2)
        patient_ids = _choose(report.patient_ids, args)
        print(f"FHIR retrieval benchmark: sekmet-fhir {version('sekmet-fhir')} on {server.base_url} (started here); "
              f"loaded {report.summary().split(' into ')[0]}; {len(patient_ids)} patients")
        passes = await measure(names, server.base_url, patient_ids, args.repeat, args.latency_ms / 1000)
        return _report(passes, patient_ids, args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; the exit status (module docstring)."""
    args = _parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        print("interrupted (the server was stopped)", file=sys.stderr)
        return 130
    except (FhirError, FhirServerError, httpx.HTTPError, RuntimeError) as exc:
        print(f"benchmark failed: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
