"""Run one seed example as a user would, and let the test watch and stop it.

Usage: ``python _seed_runner.py EXAMPLE.py stop|sigint``. The example runs unchanged in the
main thread (``runpy``, as ``__main__``). A watcher thread waits until its server is
serving, prints ``READY <json address>``, then waits for a line on stdin and stops the
example: ``stop`` calls ``ServerStop()`` from this other thread; ``sigint`` sends SIGINT to
the process, as Ctrl-C would. The runner prints ``EXITED`` when the example returned by
itself and ``INTERRUPTED`` when it ended with KeyboardInterrupt.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys
import threading
import time

from trio_modbus.server import ModbusSerialServer, ServerStop, wait_for_servers

READY_TIMEOUT = 30.0  # seconds the example has to start serving


def watch(mode: str) -> None:
    [server] = wait_for_servers(1, timeout=READY_TIMEOUT)
    native = server.native
    if isinstance(server, ModbusSerialServer) and native is not None:
        # The reader task opens the port just after the server starts: wait for it.
        deadline = time.monotonic() + READY_TIMEOUT
        while not native.port_open.is_set() and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.01)
    print("READY", json.dumps(server.address), flush=True)
    sys.stdin.readline()
    if mode == "stop":
        ServerStop()
    else:
        os.kill(os.getpid(), signal.SIGINT)


def main() -> None:
    example, mode = sys.argv[1], sys.argv[2]
    threading.Thread(target=watch, args=(mode,), daemon=True).start()
    try:
        runpy.run_path(example, run_name="__main__")
    except KeyboardInterrupt:
        print("INTERRUPTED", flush=True)
        return
    print("EXITED", flush=True)


if __name__ == "__main__":
    main()
