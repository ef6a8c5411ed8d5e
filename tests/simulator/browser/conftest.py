"""Browser tests of the simulator's web UI: Playwright driving Debian's chromium.

One browser per test module; each test gets a fresh simulator (HTTP and Modbus on port 0 of
127.0.0.1, run by Trio in a thread of this process) and a fresh browser context. A failing
test leaves a screenshot of its page in ``$TRIO_MODBUS_ARTIFACTS`` (default: pytest's temporary
directory, ``artifacts/``) and prints where.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from trio_modbus.server import ModbusSimulatorServer

from .._support import document

playwright_sync = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium")
START_TIMEOUT = 20  # seconds a simulator may take to start or stop
SCRIPT = "<script>alert(1)</script>"


def device_document() -> dict[str, Any]:
    """The device of the browser tests: 100 registers of each table.

    0..19 and 22..39 uint16 (3 holds 3, 7 holds 7), 20..21 a float32 (1.5), 40..52 a string
    holding a script; 0..39 writeable.
    """
    return document(
        setup={"co size": 100, "di size": 100, "hr size": 100, "ir size": 100},
        write=[[0, 39]],
        uint16=[
            [0, 2],
            {"addr": 3, "value": 3},
            [4, 6],
            {"addr": 7, "value": 7},
            [8, 19],
            [22, 39],
        ],
        float32=[{"addr": [20, 21], "value": 1.5}],
        string=[{"addr": [40, 52], "value": SCRIPT}],
        server={"port": 0},
    )


@dataclass
class Running:
    """A simulator running in a thread, and where it serves."""

    sim: ModbusSimulatorServer
    thread: threading.Thread
    url: str = ""

    @property
    def modbus(self) -> tuple[str, int]:
        """Where the Modbus listener is (it moves on a restart: port 0)."""
        host, port = self.sim.modbus_address[:2]
        return host, port


def start_simulator(**options: Any) -> Running:
    """A simulator on port 0 (HTTP and Modbus), started in a thread of its own."""
    options.setdefault("config", device_document())
    sim = ModbusSimulatorServer(http_host="127.0.0.1", http_port=0, modbus_port=0, **options)
    started = threading.Event()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(sim.run_forever)
            started.set()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    if not started.wait(START_TIMEOUT):
        raise RuntimeError("the simulator did not start")
    assert sim.http_address is not None
    return Running(sim, thread, "http://{}:{}".format(*sim.http_address))


def stop_simulator(running: Running) -> None:
    running.sim.stop()
    running.thread.join(START_TIMEOUT)
    assert not running.thread.is_alive(), "the simulator did not stop"


@pytest.fixture
def simulator() -> Iterator[Running]:
    running = start_simulator()
    try:
        yield running
    finally:
        stop_simulator(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One chromium per module.

    Playwright's sync API runs an asyncio loop in this thread while it lives: it must be
    gone before the tests that run asyncio themselves.
    """
    if CHROMIUM is None:
        pytest.skip("no chromium (apt-get install chromium)")
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(headless=True, executable_path=CHROMIUM)
        yield browser
        browser.close()


@dataclass
class Watched:
    """A page and what went wrong in it: console errors, failed requests, dialogs."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Console errors and failed requests.

        Not failures: event streams and fetches cut because the page navigates away, and a form's
        navigation that the browser turned into a download (it aborts the navigation).
        """
        downloaded = {f"request: {url} net::ERR_ABORTED" for url in self.downloads}
        return [*self.console_errors, *(f for f in self.failed_requests if f not in downloaded)]


def watch(page: Any) -> Watched:
    """Record the console errors, failed requests and dialogs of ``page``."""
    watched = Watched(page)

    def on_console(message: Any) -> None:
        if message.type == "error":
            watched.console_errors.append(f"console: {message.text} at {message.location}")

    def on_failed(request: Any) -> None:
        failure = request.failure or ""
        # an event stream or a fetch of the live updates is cut when the page navigates
        # away (a form's submit): not a failure (a status >= 400 still is, below)
        if request.resource_type in ("eventsource", "fetch") and "ERR_ABORTED" in failure:
            return
        watched.failed_requests.append(f"request: {request.url} {failure}")

    def on_response(response: Any) -> None:
        if response.status >= 400:
            watched.failed_requests.append(f"response: {response.url} {response.status}")

    def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.console_errors.append(f"pageerror: {error}"))
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    page.on("dialog", on_dialog)
    page.on("download", lambda download: watched.downloads.append(download.url))
    return watched


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _artifacts(request: pytest.FixtureRequest) -> Path:
    where = os.environ.get("TRIO_MODBUS_ARTIFACTS")
    if where:
        path = Path(where)
    else:
        path = request.getfixturevalue("tmp_path_factory").getbasetemp() / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _screenshot_on_failure(request: pytest.FixtureRequest, pages: list[Any]) -> None:
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed:
        return
    folder = _artifacts(request)
    for number, page in enumerate(pages):
        if page.is_closed():
            continue
        path = folder / f"{request.node.name}-{number}.png"
        try:
            page.screenshot(path=str(path), full_page=True)
        except Exception as exc:  # a screenshot must not hide the failure
            print(f"no screenshot of {page.url}: {exc}")
            continue
        print(f"screenshot of {page.url}: {path}")


@pytest.fixture
def new_page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Make watched pages: ``new_page(java_script_enabled=True, **context options)``."""
    contexts: list[Any] = []
    pages: list[Any] = []

    def make(**options: Any) -> Watched:
        options.setdefault("viewport", {"width": 1280, "height": 800})
        context = browser.new_context(**options)
        context.set_default_timeout(5000)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        return watch(page)

    yield make
    _screenshot_on_failure(request, pages)
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Any) -> Watched:
    """A watched page at 1280x800 with JavaScript."""
    watched: Watched = new_page()
    return watched
