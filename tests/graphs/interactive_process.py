"""Runs one phase of an interactive consultation in its own process (used by test_interactive_resume).

    python -m tests.graphs.interactive_process DB THREAD start
    python -m tests.graphs.interactive_process DB THREAD resume ANSWER
Prints one JSON line: the pending request (start) or the final state (resume).
"""

from __future__ import annotations

import asyncio
import json
import sys

from langgraph.types import Command

from agents.doctor import Doctor
from graphs import InteractiveEnvironment, build_consultation_graph, open_checkpointer, recursion_limit_for
from tests.graphs.helpers import decision, doctor_model


async def main(db: str, thread: str, phase: str, answer: str | None) -> None:
    # Each process gets its own scripted doctor: the first asks, the second (after the answer) diagnoses.
    model = doctor_model(decision("ask", "Does the pain spread to your arm?")) if phase == "start" else \
        doctor_model(decision("diagnose", "Acute myocardial infarction", p=0.8))
    env = InteractiveEnvironment("Evaluate the patient with chest pain.")
    async with open_checkpointer(db) as saver:
        graph = build_consultation_graph(Doctor(model), env, checkpointer=saver)
        config = {"configurable": {"thread_id": thread}, "recursion_limit": recursion_limit_for(5)}
        if phase == "start":
            await graph.ainvoke({"case_id": "c", "objective": env.opening(), "max_turns": 5}, config)
            snapshot = await graph.aget_state(config)
            print(json.dumps({"next": list(snapshot.next), "request": snapshot.interrupts[0].value}))
        else:
            final = await graph.ainvoke(Command(resume=answer), config)
            print(json.dumps(final))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None))
