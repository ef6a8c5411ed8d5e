"""Record pymodbus 3.16's answers to the corpus reads: ``pymodbus-3.16.1-answers.json``.

The tests install pymodbus 3.12.1, so 3.16.1's answers are recorded once, with the
comparison of ``test_corpus.py`` run live against 3.16.1 (its resynchronisation after each
excluded read included, so the recorded answers replay in the same order). Run it in a
throw-away venv from the repository's root::

    python3 -m venv --system-site-packages /tmp/pm316
    /tmp/pm316/bin/pip install pymodbus==3.16.1
    PYTHONPATH=. /tmp/pm316/bin/python tests/simulator/corpus/capture.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import pymodbus

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import test_corpus  # noqa: E402  (the comparison itself, imported from the test module)

SETUP = "pymodbus-3.16.1-setup.json"


def main() -> None:
    warnings.simplefilter("ignore", DeprecationWarning)
    # 3.16 keeps the old simulator's reads as a coroutine, validating inside as 3.12 did.
    context_class: Any = test_corpus.ModbusSimulatorContext
    if not hasattr(context_class, "getValues"):
        context_class.getValues = lambda self, fc, address, count=1: asyncio.run(
            self.async_OLD_getValues(fc, address, count)
        )
    document = json.loads((HERE / SETUP).read_text())
    answers: dict[str, list[list[Any]]] = {}
    for device in test_corpus.DEVICES:
        answer, sync = test_corpus.live_pymodbus(document, device)
        recorded: list[list[Any]] = []

        def recording(fc: int, address: int, count: int, answer: Any = answer) -> bytes:
            theirs: bytes = answer(fc, address, count)
            recorded.append([fc, address, count, theirs.hex()])  # noqa: B023
            return theirs

        compared, excluded, mismatches = test_corpus.compare(document, device, recording, sync)
        answers[device] = recorded
        print(
            f"{device}: {len(recorded)} reads, {compared} identical, {dict(excluded)},"
            f" {len(mismatches)} mismatches"
        )
    target = HERE / "pymodbus-3.16.1-answers.json"
    body = {"pymodbus": pymodbus.__version__, "setup": SETUP, "answers": answers}
    target.write_text(json.dumps(body, separators=(",", ":")) + "\n")
    print(f"wrote {target.name}")


if __name__ == "__main__":
    main()
