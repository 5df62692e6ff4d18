"""The run directory: locking, config checks, resume, truncated-tail repair, and the read-only loader."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from simulations.bench.config import ConfigMismatchError, DatasetRef, RunConfig, RunEnvironment
from simulations.bench.records import AttemptResult, attempt_key
from simulations.bench.rundir import NotARunError, RunDir, RunDirBusyError, RunDirError, read_run

REPO = Path(__file__).resolve().parents[3]


def make_config(**changes: object) -> RunConfig:
    base: dict[str, object] = {
        "protocol": "clinicflow", "datasets": [DatasetRef(name="demo", cases=3)], "case_ids": ["c1", "c2", "c3"],
        "models": {"reasoning": "embedded", "patient": "embedded"}, "measurement_mode": "strict", "seed": 7,
    }
    return RunConfig(**{**base, **changes})


def make_env(command: str = "bench run") -> RunEnvironment:
    return RunEnvironment(packages={"clinicflow": "test"}, command=command.split())


def result(run_id: str, case: str, status: str = "ok", **extra: object) -> AttemptResult:
    return AttemptResult(run_id=run_id, attempt=attempt_key(case, "none", 0), case_id=case, dataset="demo",
                         repeat=0, seed=1, protocol="clinicflow", measurement_mode="strict", status=status, **extra)


def test_new_directory_gets_config_lock_and_transcripts(tmp_path: Path) -> None:
    path = tmp_path / "run-a"
    with RunDir.open(path, make_config(), make_env()) as run:
        assert re.fullmatch(r"run-a-[0-9a-f]{8}", run.run_id)
        document = json.loads((path / "config.json").read_text())
        assert document["run_id"] == run.run_id
        assert RunConfig.model_validate(document["config"]) == make_config()
        assert document["environment"]["command"] == ["bench", "run"]
        assert (path / "run.lock").read_text().strip() == str(os.getpid())
        assert run.transcripts_dir.is_dir() and run.results_path == path / "results.jsonl"
    loaded = read_run(path)
    assert loaded.run_id == run.run_id and loaded.config == make_config() and loaded.results == []


def test_second_open_in_same_process_is_busy_until_closed(tmp_path: Path) -> None:
    first = RunDir.open(tmp_path, make_config(), make_env())
    with pytest.raises(RunDirBusyError) as caught:
        RunDir.open(tmp_path, make_config(), make_env())
    assert caught.value.pid == os.getpid() and str(os.getpid()) in str(caught.value)
    first.close()
    with RunDir.open(tmp_path, make_config(), make_env()) as second:
        assert second.run_id == first.run_id


def test_lock_held_by_another_process_then_released_when_it_is_killed(tmp_path: Path) -> None:
    config = make_config().model_dump_json()
    holder = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from simulations.bench.config import RunConfig, RunEnvironment
        from simulations.bench.rundir import RunDir
        run = RunDir.open(Path({str(tmp_path)!r}), RunConfig.model_validate_json({config!r}), RunEnvironment())
        print("locked", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirBusyError) as caught:
            RunDir.open(tmp_path, make_config(), make_env())
        assert caught.value.pid == proc.pid
    finally:
        proc.kill()  # SIGKILL: the kernel drops the flock with the process
        proc.wait()
    with RunDir.open(tmp_path, make_config(), make_env()):
        pass


def test_changed_config_is_refused_naming_each_field(tmp_path: Path) -> None:
    with RunDir.open(tmp_path, make_config(), make_env()):
        pass
    before = (tmp_path / "config.json").read_bytes()
    with pytest.raises(ConfigMismatchError) as caught:
        RunDir.open(tmp_path, make_config(seed=8, max_turns=10), make_env())
    names = {name for name, _, _ in caught.value.differences}
    assert names == {"seed", "max_turns"}
    assert "seed: 7 -> 8" in str(caught.value) and "max_turns: 20 -> 10" in str(caught.value)
    assert (tmp_path / "config.json").read_bytes() == before
    with RunDir.open(tmp_path, make_config(), make_env()):  # the refused open released the lock
        pass


def test_force_new_moves_the_old_run_aside_and_deletes_nothing(tmp_path: Path) -> None:
    transcript = {"case": {"id": "c1", "objective": "o"}, "dialogue": [], "outcome": {}}
    with RunDir.open(tmp_path, make_config(), make_env()) as old:
        old.load_results()
        old.write_transcript("c1-0", transcript)
        old.append_result(result(old.run_id, "c1", transcript="transcripts/c1-0.json"))
    with RunDir.open(tmp_path, make_config(seed=99), make_env(), force_new=True) as new:
        assert new.run_id != old.run_id
        assert new.load_results().latest == {}
        assert not any(new.transcripts_dir.iterdir())
    [aside] = list(tmp_path.glob("superseded-*"))
    assert json.loads((aside / "config.json").read_text())["run_id"] == old.run_id
    assert (aside / "results.jsonl").read_text().count("\n") == 1
    assert (aside / "transcripts" / "c1-0.json").is_file() and (aside / "transcripts" / "c1-0.md").is_file()
    assert read_run(tmp_path).config.seed == 99


def test_same_config_resumes_with_the_same_run_id(tmp_path: Path) -> None:
    with RunDir.open(tmp_path, make_config(), make_env("first")) as first:
        first.append_result(result(first.run_id, "c1"))
    with RunDir.open(tmp_path, make_config(), make_env("second")) as second:
        assert second.run_id == first.run_id
        assert second.finished() == {attempt_key("c1", "none", 0)}
    loaded = read_run(tmp_path)
    assert loaded.environment.command == ["first"]
    assert [env.command for env in loaded.resumed] == [["second"]]


def test_truncated_last_line_is_cut_saved_and_redone(tmp_path: Path) -> None:
    with RunDir.open(tmp_path, make_config(), make_env()) as run:
        run.append_result(result(run.run_id, "c1"))
        run_id = run.run_id
    good = (tmp_path / "results.jsonl").read_bytes()
    half = result(run_id, "c2").model_dump_json().encode()[:40]
    with open(tmp_path / "results.jsonl", "ab") as handle:
        handle.write(half)
    # The read-only loader reports it without touching the file.
    assert any("line 2: truncated" in p for p in read_run(tmp_path).problems)
    assert (tmp_path / "results.jsonl").read_bytes() == good + half
    with RunDir.open(tmp_path, make_config(), make_env()) as run:
        loaded = run.load_results()
        assert loaded.repaired_tail and loaded.lines == 1
        assert run.finished() == {attempt_key("c1", "none", 0)}
        assert (tmp_path / "results.jsonl").read_bytes() == good
        assert half in (tmp_path / "results.corrupt").read_bytes()
        run.append_result(result(run_id, "c2"))
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [AttemptResult.model_validate_json(line).case_id for line in lines] == ["c1", "c2"]


def test_bad_complete_lines_are_reported_with_their_numbers(tmp_path: Path) -> None:
    with RunDir.open(tmp_path, make_config(), make_env()) as run:
        run_id = run.run_id
    lines = [result(run_id, "c1").model_dump_json(), "{not json", '{"foo": 1}', "",
             result("someone-else", "c2").model_dump_json(), result(run_id, "c3").model_dump_json()]
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    with RunDir.open(tmp_path, make_config(), make_env()) as run:
        loaded = run.load_results()
    assert not loaded.repaired_tail and loaded.lines == 2
    assert set(loaded.latest) == {attempt_key("c1", "none", 0), attempt_key("c3", "none", 0)}
    assert [p.split(":")[0] for p in loaded.problems] == [
        "results.jsonl line 2", "results.jsonl line 3", "results.jsonl line 5"]
    assert read_run(tmp_path).problems == loaded.problems


def test_latest_line_per_attempt_wins(tmp_path: Path) -> None:
    with RunDir.open(tmp_path, make_config(), make_env()) as run:
        run.append_result(result(run.run_id, "c1", status="error"))
        run.append_result(result(run.run_id, "c2"))
        run.append_result(result(run.run_id, "c3"))
        run.append_result(result(run.run_id, "c1", status="ok"))
        run.append_result(result(run.run_id, "c3", status="error"))
        assert run.finished() == {attempt_key("c1", "none", 0), attempt_key("c2", "none", 0)}
    with RunDir.open(tmp_path, make_config(), make_env()) as run:
        assert run.finished() == {attempt_key("c1", "none", 0), attempt_key("c2", "none", 0)}
    loaded = read_run(tmp_path)
    assert [(r.case_id, r.status) for r in loaded.results] == [("c1", "ok"), ("c2", "ok"), ("c3", "error")]


def test_many_appends_all_parse(tmp_path: Path) -> None:
    with RunDir.open(tmp_path, make_config(), make_env()) as run:
        for index in range(300):
            run.append_result(result(run.run_id, f"case-{index}", final_diagnosis="x" * (index * 7)))
    raw = (tmp_path / "results.jsonl").read_text()
    assert raw.endswith("\n") and raw.count("\n") == 300
    assert len(read_run(tmp_path).results) == 300 and read_run(tmp_path).problems == []


def test_result_from_another_run_is_refused(tmp_path: Path) -> None:
    with RunDir.open(tmp_path, make_config(), make_env()) as run, pytest.raises(RunDirError, match="run_id"):
        run.append_result(result("other-run", "c1"))


def test_write_transcript_writes_json_and_markdown(tmp_path: Path) -> None:
    transcript = {"case": {"id": "c1", "objective": "Find it"}, "dialogue": [], "outcome": {}}
    with RunDir.open(tmp_path, make_config(), make_env()) as run:
        assert run.write_transcript("c1-0", transcript) == "transcripts/c1-0.json"
        with pytest.raises(RunDirError):
            run.write_transcript("../escape", transcript)
    assert json.loads((tmp_path / "transcripts" / "c1-0.json").read_text()) == transcript
    assert "Find it" in (tmp_path / "transcripts" / "c1-0.md").read_text()


def test_read_run_refuses_non_runs_and_names_bad_fields(tmp_path: Path) -> None:
    with pytest.raises(NotARunError):
        read_run(tmp_path)
    with RunDir.open(tmp_path, make_config(), make_env()):
        pass
    document = json.loads((tmp_path / "config.json").read_text())
    document["config"]["protocol"] = "bogus"
    (tmp_path / "config.json").write_text(json.dumps(document))
    with pytest.raises(RunDirError, match=r"config\.json: field 'config\.protocol'"):
        read_run(tmp_path)
    (tmp_path / "config.json").write_text("{truncated")
    with pytest.raises(RunDirError, match="config.json: cannot be read as JSON"):
        read_run(tmp_path)
