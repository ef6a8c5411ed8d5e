"""Capture pymodbus's own simulator HTTP answers: the golden files of test_http_compat.py.

Run with a Python where pymodbus 3.12.1 and aiohttp are installed (aiohttp is not a
dependency of trio_modbus; a throw-away venv with ``--system-site-packages`` and ``pip install
aiohttp`` will do)::

    python tests/simulator/golden/capture.py

It starts pymodbus's real ``ModbusSimulatorServer`` in-process under asyncio, with
``setup.json`` here (Modbus and HTTP on port 0 of 127.0.0.1), sends the requests of
``requests.json`` in order (pymodbus keeps state between them, so order matters) and writes
``pymodbus-<version>.json``: each request with the status, content type and body (parsed
when JSON) of the answer. HTML pages are kept whole.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
import pymodbus
from pymodbus.server import ModbusSimulatorServer

HERE = Path(__file__).resolve().parent


async def capture() -> list[dict]:
    simulator = ModbusSimulatorServer(
        modbus_server="server",
        modbus_device="device",
        http_host="127.0.0.1",
        http_port=0,
        json_file=str(HERE / "setup.json"),
    )
    await simulator.run_forever(only_start=True)
    try:
        assert simulator.site is not None
        port = simulator.site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        answers = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for request in json.loads((HERE / "requests.json").read_text()):
                method = request.get("method", "POST")
                if method == "GET":
                    response = await http.get(request["path"], params=request.get("params"))
                elif "json" in request:
                    response = await http.post(request["path"], json=request["json"])
                else:
                    response = await http.post(
                        request["path"],
                        content=request["content"],
                        headers={"content-type": request["content_type"]},
                    )
                kind = response.headers.get("content-type", "").split(";")[0]
                body = response.json() if kind == "application/json" else response.text
                answers.append(
                    {
                        "name": request["name"],
                        "status": response.status_code,
                        "content_type": kind,
                        "body": body,
                    }
                )
        return answers
    finally:
        await simulator.stop()


def main() -> None:
    answers = asyncio.run(capture())
    target = HERE / f"pymodbus-{pymodbus.__version__}.json"
    document = {
        "pymodbus": pymodbus.__version__,
        "python": sys.version.split()[0],
        "answers": answers,
    }
    target.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {target.name}: {len(answers)} answers")


if __name__ == "__main__":
    main()
