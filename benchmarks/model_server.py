"""A stand-in OpenAI-compatible chat server for benchmarks: every answer comes after a fixed delay.

It is the yardstick of `throughput.py` and `panel_latency.py`, not a model: it recognises which role sent a request
from the system message, answers from a fixed script (a doctor that asks, orders tests and diagnoses in six turns, a
patient's sentence, NORMAL READINGS, "Yes", a rubric of ones; the diagnostic panel's five roles, recognised by the
first line ``Role: <role>`` of their system message, follow the same six-turn script in each role's JSON), and waits
with `asyncio.sleep`, so hundreds of requests can be in flight at once and each still takes the delay. Plain asyncio streams and the standard library only: nothing
of the project is imported, so it starts fast in its own process (the benchmark must not share a GIL with it).

Endpoints: ``POST /v1/chat/completions`` (``/chat/completions`` too), ``GET /stats``, ``POST /stats/reset``.
The stats count requests per role and prompt tokens, the largest single message, and prefix reuse: the share of
prompt characters in the longest leading run of messages that an earlier request already sent, which is what a
serving engine's prefix (KV) cache could skip. An append-only message list scores high; one growing user string
scores low.

    python benchmarks/model_server.py --port 0 --delay-ms 100 [--port-file FILE]   # prints its base URL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

URL_PREFIX = "MODEL_SERVER_URL "
FINAL_DIAGNOSIS = "Community-acquired pneumonia"
# The doctor's script: (action, text); the last entry is the diagnosis. Texts are distinct so that a flattened
# history can be searched for them to tell which turn a doctor request is on, whatever the prompt's wording.
DOCTOR_SCRIPT: tuple[tuple[str, str], ...] = (
    ("ask", "What brings you in today, and when did it start?"),
    ("ask", "Have you had any fever, pain or other new symptoms?"),
    ("test", "Complete blood count"),
    ("ask", "Do you have any past illnesses or take any regular medicines?"),
    ("test", "Chest radiograph"),
    ("diagnose", FINAL_DIAGNOSIS),
)
PATIENT_ANSWER = "It began two days ago and has slowly got worse."
MEASUREMENT_ANSWER = "RESULTS: NORMAL READINGS"
RUBRIC_KEYS = ("core_disease", "etiology", "site", "specificity", "completeness")
# The diagnostic panel's roles (agents.panel): each system message opens with "Role: <role>".
PANEL_ROLES = ("hypothesis", "test_chooser", "challenger", "stewardship", "checklist")
ROLES = ("doctor", "agentclinic_doctor", "rubric", "moderator", "measurement", "patient",
         *(f"panel:{role}" for role in PANEL_ROLES), "unknown")
ALTERNATIVE = "Acute bronchitis"
# The panel's top probability before the script's last line (under its 0.7 commit threshold, so it goes on) and on it.
PANEL_LEANING, PANEL_SURE = 0.6, 0.9
_PANEL_ROLE = re.compile(r"\A\s*Role:\s*([a-z_]+)\s*$", re.MULTILINE)
_FINDING_ID = re.compile(r"\[(F\d+)\]")
_ASKED = re.compile(r"\basked\s+(\d+)\b", re.IGNORECASE)  # "you have asked 3 (questions)"
# The last-turn instruction in its known wordings: ours, upstream's and the agentclinic protocol's.
_FINAL = re.compile(r"\b(?:final|last)\s+(?:turn|question)\b", re.IGNORECASE)
_TURN_OF = re.compile(r"turn\s+(\d+)\s+of\s+(\d+)", re.IGNORECASE)


# ---------------- what to answer ----------------


def _text(content: Any) -> str:
    if isinstance(content, list):  # content parts: only the text counts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def detect_role(messages: list[dict[str, Any]]) -> str:
    """The role a request comes from, by lower-cased keywords of its system message (or its first message)."""
    system = next((_text(m.get("content")) for m in messages if m.get("role") == "system"), None)
    if system is None:
        system = _text(messages[0].get("content")) if messages else ""
    if (panel := _PANEL_ROLE.match(system)) and panel.group(1) in PANEL_ROLES:
        return f"panel:{panel.group(1)}"
    text = system.lower()
    if '"action"' in text:  # our doctor's JSON protocol (checked first: its prompt mentions the patient too)
        return "doctor"
    if "core_disease" in text:
        return "rubric"
    if "diagnosis ready" in text or "request test" in text:
        return "agentclinic_doctor"
    if "yes or no" in text:
        return "moderator"
    if "results:" in text or "normal readings" in text:
        return "measurement"
    if "patient" in text:
        return "patient"
    return "unknown"


def _agentclinic_tag(action: str, text: str) -> str:
    if action == "test":
        return f"REQUEST TEST: {text.replace(' ', '_').title()}"
    if action == "diagnose":
        return f"DIAGNOSIS READY: {text}"
    return text


def doctor_turn(messages: list[dict[str, Any]]) -> int:
    """How many doctor turns came before this request (0-based turn index), from whichever sign is present:
    assistant messages, "Turn N of M", "asked k questions", or the script's own lines found in the history."""
    last_user = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    seen = "\n".join(_text(m.get("content")) for m in messages if m.get("role") != "system")
    everything = "\n".join(_text(m.get("content")) for m in messages)
    signs = [sum(1 for m in messages if m.get("role") == "assistant")]
    if turns := _TURN_OF.findall(last_user):
        signs.append(int(turns[-1][0]) - 1)
    if asked := _ASKED.findall(everything):
        signs.append(int(asked[-1]))
    # Questions are searched as written, tests as their tags: a bare test name could be in the case's own text.
    signs.append(sum(1 for action, text in DOCTOR_SCRIPT[:-1] if _agentclinic_tag(action, text) in seen))
    return max(signs)


def _is_final_turn(messages: list[dict[str, Any]]) -> bool:
    last_user = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    turns = _TURN_OF.findall(last_user)
    return bool(_FINAL.search(last_user)) or bool(turns and int(turns[-1][0]) >= int(turns[-1][1]))


def doctor_step(messages: list[dict[str, Any]]) -> tuple[str, str]:
    """(action, text) the scripted doctor gives on this request: the next script line, or the diagnosis."""
    turn = doctor_turn(messages)
    if _is_final_turn(messages) or turn >= len(DOCTOR_SCRIPT) - 1:
        return DOCTOR_SCRIPT[-1]
    return DOCTOR_SCRIPT[turn]


def _finding_ids(messages: list[dict[str, Any]]) -> list[str]:
    """The finding ids (``[F3]``) the panel's brief shows, in order."""
    last_user = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    return list(dict.fromkeys(_FINDING_ID.findall(last_user)))


def panel_answer(role: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """One panel role's JSON on this request: the doctor's script line for the brief's turn, seen by each role.

    Hypothesis leads with the final diagnosis (below the commit threshold until the script's last line) and names
    the script's next step; the test chooser proposes the script's test of this turn (else its next one); the
    challenger lets the leader hold; stewardship vetoes nothing; the checklist is ready only on the last line.
    """
    action, text = doctor_step(messages)
    ids = _finding_ids(messages)
    if role == "hypothesis":
        sure = action == "diagnose"
        return {
            "differential": [
                {"diagnosis": FINAL_DIAGNOSIS, "probability": PANEL_SURE if sure else PANEL_LEANING,
                 "evidence": ids[-2:]},
                {"diagnosis": ALTERNATIVE, "probability": round(1 - (PANEL_SURE if sure else PANEL_LEANING) - 0.05, 2),
                 "evidence": []},
            ],
            "moved_by": ids[-1:],
            "next_step": action,
            "question": text if action == "ask" else "",
        }
    if role == "test_chooser":
        tests = [t for a, t in DOCTOR_SCRIPT if a == "test"]
        chosen = text if action == "test" else next(
            (t for a, t in DOCTOR_SCRIPT[doctor_turn(messages):] if a == "test"), tests[-1])
        return {"tests": [{"name": chosen, "reason": "Scripted: separates the leading diagnoses."}],
                "record_question": "", "image_request": ""}
    if role == "challenger":
        return {"concern": "Scripted: no anchoring seen.", "alternative": ALTERNATIVE, "falsifying_test": "",
                "leader_holds": True}
    if role == "stewardship":
        return {"vetoes": [], "substitutions": [], "note": "Scripted: no objection."}
    return {"problems": [], "ready_to_diagnose": action == "diagnose"}  # checklist


def scripted_answer(role: str, messages: list[dict[str, Any]]) -> str:
    """The reply text for one request from ``role``."""
    if role.startswith("panel:"):
        return json.dumps(panel_answer(role.removeprefix("panel:"), messages))
    if role == "doctor":
        action, text = doctor_step(messages)
        return json.dumps({
            "action": action,
            "text": text,
            "differential": [{"diagnosis": FINAL_DIAGNOSIS, "probability": 0.6},
                             {"diagnosis": "Acute bronchitis", "probability": 0.3}],
            "rationale": "Scripted benchmark reply.",
        })
    if role == "agentclinic_doctor":
        return _agentclinic_tag(*doctor_step(messages))
    if role == "rubric":
        return json.dumps(dict.fromkeys(RUBRIC_KEYS, 1))
    if role == "moderator":
        return "Yes"
    if role == "measurement":
        return MEASUREMENT_ANSWER
    if role == "patient":
        return PATIENT_ANSWER
    return "OK."


# ---------------- statistics ----------------


class ServerStats:
    """Counters over the requests since the last reset, and the message-list prefixes seen so far."""

    def __init__(self) -> None:
        self.requests = 0
        self.roles: Counter[str] = Counter()
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.prompt_chars = 0
        self.reusable_chars = 0
        self.largest_message_chars = 0
        self._prefixes: set[bytes] = set()

    def observe(self, role: str, messages: list[dict[str, Any]], prompt_tokens: int, completion_tokens: int) -> None:
        sizes = [len(_text(m.get("content"))) for m in messages]
        # A chain hash per prefix: messages[:k] hashes the hash of messages[:k-1] and message k, so every prefix of
        # a request costs one hash of its last message, and a seen prefix implies all shorter ones were seen.
        chain, digest = [], b""
        for message in messages:
            body = json.dumps([message.get("role"), message.get("content")], sort_keys=True).encode()
            digest = hashlib.blake2b(digest + body, digest_size=16).digest()
            chain.append(digest)
        reused = next((k for k in range(len(chain), 0, -1) if chain[k - 1] in self._prefixes), 0)
        self._prefixes.update(chain)
        self.requests += 1
        self.roles[role] += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.prompt_chars += sum(sizes)
        self.reusable_chars += sum(sizes[:reused])
        self.largest_message_chars = max([self.largest_message_chars, *sizes])

    def as_dict(self) -> dict[str, Any]:
        share = self.reusable_chars / self.prompt_chars if self.prompt_chars else 0.0
        return {
            "requests": self.requests, "roles": dict(self.roles), "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "prompt_chars": self.prompt_chars,
            "reusable_chars": self.reusable_chars, "reusable_share": share,
            "largest_message_chars": self.largest_message_chars,
        }


# ---------------- HTTP ----------------


class ModelServer:
    """The HTTP/1.1 side (keep-alive, Content-Length bodies): just enough for httpx and the OpenAI client."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.stats = ServerStats()

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages") or []
        role = detect_role(messages)
        answer = scripted_answer(role, messages)
        prompt_tokens = sum(len(_text(m.get("content"))) for m in messages) // 4
        completion_tokens = len(answer) // 4 + 1
        self.stats.observe(role, messages, prompt_tokens, completion_tokens)
        return {
            "id": f"bench-{self.stats.requests}", "object": "chat.completion", "model": body.get("model", "bench"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    async def route(self, method: str, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        path = path.split("?", 1)[0].removeprefix("/v1")
        if method == "POST" and path == "/chat/completions":
            try:
                body = json.loads(raw)
            except ValueError:
                return 400, {"error": {"message": "the body is not JSON"}}
            messages = body.get("messages") if isinstance(body, dict) else None
            if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                return 400, {"error": {"message": "messages must be a list of objects"}}
            reply = self.completion(body)
            await asyncio.sleep(self.delay_s)  # after the work, so the whole request takes at least the delay
            return 200, reply
        if method == "GET" and path == "/stats":
            return 200, self.stats.as_dict()
        if method == "POST" and path == "/stats/reset":
            self.stats = ServerStats()
            return 200, {"reset": True}
        return 404, {"error": {"message": f"no route {method} {path}"}}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                status, payload = await self.route(method, path, raw)
                data = json.dumps(payload).encode()
                reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
                writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass  # the client closed the connection (or sent something this server does not speak)
        finally:
            writer.close()


async def serve(port: int, delay_s: float, port_file: Path | None) -> None:
    app = ModelServer(delay_s)
    server = await asyncio.start_server(app.handle, "127.0.0.1", port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{bound}/v1"
    if port_file is not None:
        port_file.write_text(f"{bound}\n")
    print(f"{URL_PREFIX}{url}", flush=True)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def serve_model_server(delay_ms: float = 100.0, start_timeout_s: float = 20.0) -> Iterator[str]:
    """Run the server in a subprocess on a free port; yields its base URL (``http://127.0.0.1:PORT/v1``)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--port", "0", "--delay-ms", str(delay_ms)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        url = _read_url(process, start_timeout_s)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _read_url(process: subprocess.Popen[str], timeout_s: float) -> str:
    # A reader thread gives the blocking readline a timeout (a server that never starts must not hang the caller).
    assert process.stdout is not None
    line: list[str] = []

    def read() -> None:
        line.append(process.stdout.readline())  # type: ignore[union-attr]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not line or not line[0].startswith(URL_PREFIX):
        raise RuntimeError(f"the model server did not start (exit code {process.poll()}, said {line[:1]!r})")
    return line[0][len(URL_PREFIX):].strip()


def fetch_stats(base_url: str) -> dict[str, Any]:
    """The server's counters since the last reset (see `ServerStats.as_dict`)."""
    import httpx  # only the callers need it; the server itself stays on the standard library

    response = httpx.get(f"{base_url}/stats", timeout=10.0, trust_env=False)
    response.raise_for_status()
    return response.json()


def reset_stats(base_url: str) -> None:
    """Zero the counters and forget the prefixes seen, so the next run is measured on its own."""
    import httpx

    httpx.post(f"{base_url}/stats/reset", timeout=10.0, trust_env=False).raise_for_status()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--delay-ms", type=float, default=100.0, help="how long every chat completion takes")
    parser.add_argument("--port-file", type=Path, help="also write the bound port here")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.delay_ms / 1000, args.port_file))


if __name__ == "__main__":
    main()
