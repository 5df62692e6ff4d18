"""SekmetServer: loopback only, a clear error when it cannot start, a persistent store that is not loaded twice."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from simulations.demo_records import demo_record_bundle
from tests.conftest import DEMO_REFERENCE_DATE
from tools.fhirserver import SekmetServer, ServerConfigError, ServerStartError

PROC_NET_TCP = Path("/proc/net/tcp")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.org", "::"])
def test_refuses_a_non_loopback_host_by_default(host):
    with pytest.raises(ServerConfigError, match="only loopback"):
        SekmetServer(host=host)


def test_generated_settings_are_loopback_quiet_and_keep_tokens_out_of_reprs(tmp_path):
    server = SekmetServer(tmp_path, port=8765, bearer_tokens=["s3cret-token"])
    settings = server.settings()
    assert settings["host"] == "127.0.0.1"
    assert settings["base_url"] == server.base_url == "http://127.0.0.1:8765/fhir"
    assert settings["simulator"] == {"enabled": False} and settings["log_inbound"] is False
    assert settings["data_dir"] == str(tmp_path)
    assert "s3cret-token" not in json.dumps(settings) + repr(server)


def test_conflicting_options_are_refused():
    with pytest.raises(ServerConfigError):
        SekmetServer(bearer_tokens=["a"], server_auth={"types": ["smart"]})
    with pytest.raises(ServerConfigError):
        SekmetServer(validation="loose")  # type: ignore[arg-type]


@pytest.mark.slow
def test_the_session_server_listens_on_loopback_only(fhir_server):
    assert fhir_server.running
    assert httpx.get(f"{fhir_server.base_url}/metadata", timeout=5).json()["resourceType"] == "CapabilityStatement"
    if not PROC_NET_TCP.exists():
        pytest.skip("no /proc/net/tcp to read listening sockets from")
    listening = set()
    for line in PROC_NET_TCP.read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port = local.split(":")
        if state == "0A" and int(port, 16) == fhir_server.port:  # 0A: LISTEN
            listening.add(address)
    assert listening == {"0100007F"}  # 127.0.0.1, little-endian hex


@pytest.mark.slow
def test_a_taken_port_gives_a_clear_error_with_the_log(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = SekmetServer(tmp_path, port=port, startup_timeout=30)
        with pytest.raises(ServerStartError) as info:
            server.start()
    message = str(info.value)
    assert "exited with code" in message and f"127.0.0.1:{port}" in message
    assert "address already in use" in info.value.log_tail.lower()
    assert not server.running


@pytest.mark.slow
def test_a_server_that_never_answers_in_time_is_stopped_with_a_clear_error(tmp_path):
    server = SekmetServer(tmp_path, startup_timeout=0.05)
    with pytest.raises(ServerStartError, match="did not answer GET .*/metadata within"):
        server.start()
    assert not server.running


@pytest.mark.slow
def test_a_persistent_store_survives_a_restart_and_is_not_loaded_twice(tmp_path):
    bundle = demo_record_bundle("chest-pain", reference_date=DEMO_REFERENCE_DATE)
    token = "local-admin-token"
    with SekmetServer(tmp_path, bearer_tokens=[token]) as server:
        patient_url = f"{server.base_url}/Patient/demo-chest-pain"
        report = server.load([bundle])
        assert report is not None and report.patient_ids == ["demo-chest-pain"]
        assert httpx.get(patient_url, timeout=5).status_code == 401  # the token is required
    assert not server.running and (tmp_path / "sekmet.db").exists()

    with SekmetServer(tmp_path, bearer_tokens=[token]) as again:
        assert again.load([bundle]) is None  # same bundles, already there
        answer = httpx.get(f"{again.base_url}/Patient/demo-chest-pain", timeout=5,
                           headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and answer.json()["name"][0]["family"] == "Keane"
        changed = demo_record_bundle("chest-pain", reference_date=DEMO_REFERENCE_DATE.replace(year=2026))
        assert again.load([changed]) is not None  # different content: loaded
