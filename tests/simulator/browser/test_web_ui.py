"""The simulator's web UI in a real browser (chromium), with a real Modbus client (pymodbus's).

Each test runs a simulator on port 0 (HTTP and Modbus, 127.0.0.1) and drives its pages as a
user would; what the pages do is checked from the Modbus side, and what clients do is checked
on the pages, without reloading them.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from .conftest import SCRIPT, Running, Watched, start_simulator, stop_simulator

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.browser
LIVE = 1000  # ms: what a client does shows on the page within this, without a reload


@contextmanager
def modbus_client(where: tuple[str, int], timeout: float = 2) -> Iterator[ModbusTcpClient]:
    client = ModbusTcpClient(where[0], port=where[1], timeout=timeout, retries=0)
    assert client.connect()
    try:
        yield client
    finally:
        client.close()


def read(client: ModbusTcpClient, address: int, count: int = 1) -> Any:
    return client.read_holding_registers(address, count=count, device_id=1)


def open_page(page: Watched, running: Running, path: str) -> Any:
    page.page.goto(running.url + path)
    expect(page.page.locator("html")).to_have_attribute("data-ready", "1")
    return page.page


# -- 1 ------------------------------------------------------------------------------------------


def test_every_page_loads_clean_and_navigation_works(simulator: Running, page: Watched) -> None:
    p = page.page
    p.goto(simulator.url + "/")
    expect(p.get_by_role("heading", level=1)).to_have_text("Modbus simulator")
    for label in ("Registers", "Calls", "Faults", "Log", "Server"):
        p.get_by_role("navigation").get_by_role("link", name=label, exact=True).click()
        expect(p.get_by_role("heading", level=1)).to_have_text(label)
        expect(p).to_have_url(f"{simulator.url}/api/{label.lower()}")
        expect(p.locator("html")).to_have_attribute("data-ready", "1")
        link = p.get_by_role("navigation").get_by_role("link", name=label, exact=True)
        expect(link).to_have_attribute("aria-current", "page")
        p.set_viewport_size({"width": 360, "height": 740})  # a narrow window: no sideways page
        assert p.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        p.set_viewport_size({"width": 1280, "height": 800})
    p.keyboard.press("Tab")  # the first stop is the skip link
    expect(p.locator(":focus")).to_have_text("Skip to the content")
    assert page.problems() == []
    response = p.request.get(simulator.url + "/api/calls")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


# -- 2 ------------------------------------------------------------------------------------------


def test_registers_set_filter_and_live_values(simulator: Running, page: Watched) -> None:
    p = open_page(page, simulator, "/api/registers")
    form = p.locator("form", has=p.get_by_role("button", name="Set"))
    form.get_by_label("Register").fill("3")
    form.get_by_label("Value").fill("1234")
    form.get_by_role("button", name="Set").click()
    expect(p.locator("#result")).to_have_text("ok")
    with modbus_client(simulator.modbus) as client:
        assert read(client, 3).registers == [1234]

        # Add 0..9: ten rows; a client's write shows within a second, without a reload
        filters = p.locator("form", has=p.get_by_role("button", name="Add"))
        filters.get_by_label("Start").fill("0")
        filters.get_by_label("End").fill("9")
        filters.get_by_role("button", name="Add").click()
        rows = p.locator("#registers tbody tr")
        expect(rows).to_have_count(10)
        expect(p.locator('#registers tr[data-index="3"] .value')).to_have_text("1234")
        p.evaluate("window.notReloaded = true")
        assert not client.write_register(5, 777, device_id=1).isError()
        expect(p.locator('#registers tr[data-index="5"] .value')).to_have_text("777", timeout=LIVE)
        expect(p.locator('#registers tr[data-index="5"] .writes')).to_have_text("1")
        assert p.evaluate("window.notReloaded") is True

        # Clear: none; Add by type (float32) over everything: the float only
        p.locator("form", has=p.get_by_role("button", name="Clear")).get_by_role(
            "button", name="Clear"
        ).click()
        expect(rows).to_have_count(0)
        filters = p.locator("form", has=p.get_by_role("button", name="Add"))
        filters.get_by_label("Type").select_option(label="float32")
        filters.get_by_role("button", name="Add").click()
        expect(rows).to_have_count(1)
        expect(rows.first.locator("th")).to_have_text("20-21")
        expect(rows.first.locator(".value")).to_have_text("1.5")

        # a float32 Set round-trips: the client reads the two registers of 3.25
        form = p.locator("form", has=p.get_by_role("button", name="Set"))
        form.get_by_label("Register").fill("20")
        form.get_by_label("Value").fill("3.25")
        form.get_by_label("As").select_option("float32")
        form.get_by_role("button", name="Set").click()
        expect(p.locator("#result")).to_have_text("ok")
        expect(rows.first.locator(".value")).to_have_text("3.25")
        registers = read(client, 20, 2).registers
        assert struct.unpack(">f", struct.pack(">HH", *registers))[0] == 3.25
    assert page.problems() == []


# -- 3 ------------------------------------------------------------------------------------------


def test_calls_live_filter_pause_and_download(simulator: Running, page: Watched) -> None:
    p = open_page(page, simulator, "/api/calls")
    rows = p.locator("#calls tbody tr:not(.is-hidden)")
    with modbus_client(simulator.modbus) as client:
        read(client, 7, 2)
        first = p.locator("#calls tbody tr").first
        expect(first).to_contain_text("read_holding_registers", timeout=LIVE)
        cells = first.locator("td")
        expect(cells.nth(2)).to_have_text("1")  # unit
        expect(cells.nth(3)).to_have_text("read_holding_registers")
        expect(cells.nth(4)).to_have_text("7")  # address
        expect(cells.nth(5)).to_have_text("2")  # count
        expect(cells.nth(8)).to_have_text("ok")
        request_hex = cells.nth(10).locator("code.hex")
        expect(request_hex).to_be_hidden()  # the decoded view first
        p.get_by_role("radio", name="Hex").check()
        expect(request_hex).to_be_visible()
        expect(request_hex).to_contain_text("00 06 01 03 00 07 00 02")

        # the keyboard reaches the Pause button, and Space presses it
        for _ in range(40):
            if p.evaluate("document.activeElement.id") == "pause":
                break
            p.keyboard.press("Tab")
        p.keyboard.press("Space")
        expect(p.locator("#pause")).to_have_attribute("aria-pressed", "true")
        p.keyboard.press("Space")
        expect(p.locator("#pause")).to_have_attribute("aria-pressed", "false")

        # the function filter hides the other functions' rows, also those that come later
        p.locator("#c-function").select_option("3")
        client.write_register(8, 5, device_id=1)
        expect(p.locator("#calls tbody tr")).to_have_count(2, timeout=LIVE)
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("read_holding_registers")

        # pause: the table holds while the traffic goes on; resume shows what came
        p.get_by_role("button", name="Pause").click()
        for _ in range(3):
            read(client, 9)
        expect(p.locator("#calls-status")).to_contain_text("paused, 3 new held", timeout=LIVE)
        expect(p.locator("#calls tbody tr")).to_have_count(2)
        p.get_by_role("button", name="Resume").click()
        expect(rows).to_have_count(4)

        # the download holds the rows the filter shows
        with p.expect_download() as info:
            p.get_by_role("link", name="Download (JSON lines)").click()
        lines = [json.loads(line) for line in Path(info.value.path()).read_text().splitlines()]
        assert [(c["function"], c["address"], c["count"]) for c in lines] == [
            ("read_holding_registers", 7, 2),
            *[("read_holding_registers", 9, 1)] * 3,
        ]

        # the address filter takes every range a request touches: 0x17's write range too
        p.locator("#c-function").select_option("")
        p.locator("#c-address").fill("3")
        client.readwrite_registers(
            read_address=7, read_count=1, write_address=3, values=[3], device_id=1
        )
        expect(rows).to_have_count(1, timeout=LIVE)
        expect(rows.first).to_contain_text("read_write_multiple_registers")
    assert page.problems() == []


# -- 4 ------------------------------------------------------------------------------------------


def test_a_rule_from_the_faults_form_acts_then_vanishes(simulator: Running, page: Watched) -> None:
    p = open_page(page, simulator, "/api/faults")
    form = p.locator("#add-fault")
    form.get_by_label("Effect", exact=True).select_option("exception")
    form.locator('input[name="code"]').fill("6")
    form.locator('input[name="unit"]').fill("1")
    form.locator('input[name="function"]').fill("3")
    form.locator('input[name="address"]').fill("10..20")
    form.get_by_label("times").fill("2")
    form.get_by_role("button", name="Add rule").click()
    rules = p.locator("#rules tbody tr")
    expect(rules).to_have_count(1)
    expect(rules.first).to_contain_text("code=6")
    expect(rules.first).to_contain_text("unit=1 function=3 address=10..20")
    rule_id = rules.first.get_attribute("data-rule")
    with modbus_client(simulator.modbus) as client:
        for address in (10, 12):
            reply = read(client, address, 2)
            assert reply.isError() and reply.function_code == 0x83
            assert reply.exception_code == 6
        assert read(client, 14, 2).registers == [0, 0]  # the third: normal
        assert read(client, 30, 2).registers == [0, 0]  # out of range: normal
    expect(rules).to_have_count(0, timeout=2 * LIVE)  # spent: gone without a reload
    p.get_by_role("navigation").get_by_role("link", name="Calls").click()
    rows = p.locator("#calls tbody tr")
    expect(rows).to_have_count(4)
    for number in (2, 3):  # newest first: the two refused reads are the oldest
        expect(rows.nth(number).locator("td").nth(8)).to_contain_text("exception 06")
        expect(rows.nth(number).locator("td").nth(9)).to_have_text(rule_id or "?")
    for number in (0, 1):
        expect(rows.nth(number).locator("td").nth(9)).to_have_text("")
    assert page.problems() == []


# -- 5 ------------------------------------------------------------------------------------------


def simulate(p: Any, kind: str, **fields: str) -> None:
    """Fill pymodbus's quick "Simulate" form (on the faults page) and submit it."""
    form = p.locator("form", has=p.get_by_role("button", name="Simulate"))
    form.get_by_role("radio", name=kind).check()
    for label, value in fields.items():
        control = form.get_by_label(label)
        if label == "Error code":
            control.select_option(value)
        else:
            control.fill(value)
    form.get_by_role("button", name="Simulate").click()
    expect(p.locator(".message")).to_have_text("Simulate: ok")


def test_pymodbus_quick_simulate_form(simulator: Running, page: Watched) -> None:
    p = open_page(page, simulator, "/api/faults")
    where = simulator.modbus
    simulate(p, "Error", **{"Error code": "2", "Clear after (requests)": "1"})
    with modbus_client(where) as client:
        reply = read(client, 3)
        assert reply.isError() and reply.exception_code == 2
        assert read(client, 3).registers == [3]  # cleared after one

    simulate(p, "Empty", **{"Clear after (requests)": "1"})
    with modbus_client(where, timeout=0.5) as client, pytest.raises(ModbusException):
        read(client, 3)

    simulate(p, "Junk", **{"Junk length (bytes)": "10", "Clear after (requests)": "1"})
    with modbus_client(where, timeout=0.5) as client:
        try:
            reply = read(client, 3)
        except ModbusException:
            pass  # a timeout: pymodbus drops what it cannot frame
        else:
            assert reply.isError()  # or a framing error
    with modbus_client(where) as client:
        assert read(client, 3).registers == [3]

    simulate(p, "Normal", **{"Delay response (seconds)": "1", "Clear after (requests)": "1"})
    with modbus_client(where, timeout=5) as client:
        started = time.monotonic()
        assert read(client, 4).registers == [0]
        assert time.monotonic() - started >= 1
    p.get_by_role("navigation").get_by_role("link", name="Calls").click()
    delayed = p.locator('#calls tbody tr[data-address="4"]').first
    latency = float(delayed.locator("td").nth(7).inner_text())
    assert latency >= 1.0

    p.get_by_role("navigation").get_by_role("link", name="Faults").click()
    simulate(p, "Error", **{"Error code": "4", "Clear after (requests)": "0"})
    with modbus_client(where) as client:
        assert read(client, 3).exception_code == 4
        assert read(client, 3).exception_code == 4  # no clear-after: it stays
        p.locator("form", has=p.get_by_role("button", name="Simulate")).get_by_role(
            "button", name="Reset"
        ).click()
        expect(p.locator(".message")).to_have_text("Reset: ok")
        assert read(client, 3).registers == [3]
    assert page.problems() == []


# -- 6 ------------------------------------------------------------------------------------------


def test_log_tails_server_counts_resets_and_restarts(simulator: Running, page: Watched) -> None:
    p = open_page(page, simulator, "/api/log")
    logging.getLogger("trio_modbus.simulator").warning("from the test: <b>bold</b> & more")
    row = p.locator("#log tbody tr", has_text="from the test")
    expect(row).to_have_count(1, timeout=LIVE)
    expect(row.locator("td").nth(3)).to_have_text("from the test: <b>bold</b> & more")
    p.get_by_label("Level at least").select_option("ERROR")
    expect(row).to_be_hidden()
    p.get_by_label("Level at least").select_option("WARNING")
    expect(row).to_be_visible()
    with p.expect_download() as info:
        p.get_by_role("button", name="Download").click()
    assert "from the test: <b>bold</b> & more" in Path(info.value.path()).read_text()
    p.get_by_role("button", name="Clear").click()
    expect(p.locator("#log tbody tr")).to_have_count(0)

    p.get_by_role("navigation").get_by_role("link", name="Server").click()
    uptime = p.locator("#uptime")
    before = int(uptime.inner_text())
    expect(uptime).not_to_have_text(str(before), timeout=3000)
    assert int(uptime.inner_text()) > before

    with modbus_client(simulator.modbus) as client:
        expect(p.locator("#clients tbody")).to_contain_text("127.0.0.1:", timeout=3000)
        assert not client.write_register(3, 999, device_id=1).isError()
        assert read(client, 3).registers == [999]
        p.get_by_role("button", name="Reset values").click()
        expect(p.locator(".message")).to_have_text("values reset")
        assert read(client, 3).registers == [3]

    old = p.locator("#modbus-listener").inner_text()
    with modbus_client(simulator.modbus) as client:
        assert not client.write_register(3, 7, device_id=1).isError()
        p.get_by_role("button", name="Restart").click()
        expect(p.get_by_role("status").filter(has_text="restarted")).to_be_visible()
        # Rebound on the port it had (port 0 in the file): the same client reconnects.
        assert p.locator("#modbus-listener").inner_text() == old
        with pytest.raises(ModbusException):
            read(client, 3)  # its connection was closed by the restart
        assert client.connect()
        assert read(client, 3).registers == [3]  # the file's value again
    assert page.problems() == []


# -- 7 ------------------------------------------------------------------------------------------


def test_a_script_in_a_string_register_is_inert(simulator: Running, page: Watched) -> None:
    p = open_page(page, simulator, "/api/registers")
    filters = p.locator("form", has=p.get_by_role("button", name="Add"))
    filters.get_by_label("Start").fill("40")
    filters.get_by_label("End").fill("52")
    filters.get_by_role("button", name="Add").click()
    value = p.locator('#registers tr[data-index="40-52"] .value')
    expect(value).to_contain_text(SCRIPT)
    logging.getLogger("trio_modbus.simulator").warning(SCRIPT)
    p.get_by_role("navigation").get_by_role("link", name="Log").click()
    expect(p.locator("#log tbody")).to_contain_text(SCRIPT)
    logging.getLogger("trio_modbus.simulator").warning("live: " + SCRIPT)
    expect(p.locator("#log tbody")).to_contain_text("live: " + SCRIPT, timeout=LIVE)
    assert p.locator("script").count() == 1  # app.js only
    assert page.dialogs == []
    assert page.problems() == []


# -- 8 ------------------------------------------------------------------------------------------


def test_pymodbus_forms_work_without_javascript(simulator: Running, new_page: Any) -> None:
    page = new_page(java_script_enabled=False)
    p = page.page
    p.goto(simulator.url + "/api/registers")
    filters = p.locator("form", has=p.get_by_role("button", name="Add"))
    filters.get_by_label("Start").fill("0")
    filters.get_by_label("End").fill("9")
    filters.get_by_role("button", name="Add").click()
    expect(p.locator("#registers tbody tr")).to_have_count(10)
    form = p.locator("form", has=p.get_by_role("button", name="Set"))
    form.get_by_label("Register").fill("3")
    form.get_by_label("Value").fill("4321")
    form.get_by_role("button", name="Set").click()
    expect(p.locator('#registers tr[data-index="3"] .value')).to_have_text("4321")
    with modbus_client(simulator.modbus) as client:
        assert read(client, 3).registers == [4321]
        p.goto(simulator.url + "/api/calls")
        form = p.locator("form", has=p.get_by_role("button", name="Simulate"))
        form.get_by_role("radio", name="Error").check()
        form.get_by_label("Error code").select_option("2")
        form.get_by_label("Clear after (requests)").fill("0")
        form.get_by_role("button", name="Simulate").click()
        expect(p.locator("#simulation-state")).to_have_text("ACTIVE")
        assert read(client, 3).exception_code == 2
        form = p.locator("form", has=p.get_by_role("button", name="Simulate"))
        form.get_by_role("button", name="Reset").click()
        expect(p.locator("#simulation-state")).to_have_text("")
        assert read(client, 3).registers == [4321]
        p.goto(simulator.url + "/api/server")
        p.get_by_role("button", name="Reset values").click()
        assert read(client, 3).registers == [3]
    assert page.problems() == []


# -- 9 ------------------------------------------------------------------------------------------

CALLS = 10_000


def pipelined_reads(where: tuple[str, int], count: int) -> None:
    """``count`` reads of register 0, sent 500 at a time on one connection."""
    batch = 500
    with socket.create_connection(where, timeout=10) as sock:
        for first in range(0, count, batch):
            frames = b"".join(
                struct.pack(">HHHBBHH", (first + i) % 65536, 0, 6, 1, 3, 0, 1)
                for i in range(min(batch, count - first))
            )
            sock.sendall(frames)
            expected = 11 * (len(frames) // 12)
            received = 0
            while received < expected:
                chunk = sock.recv(65536)
                assert chunk, "the server closed the connection"
                received += len(chunk)


def test_the_calls_page_stays_responsive_with_10000_calls(
    simulator: Running, page: Watched
) -> None:
    pipelined_reads(simulator.modbus, CALLS)
    assert len(simulator.sim.device.recorder) == CALLS
    p = open_page(page, simulator, "/api/calls")
    ready = p.evaluate("window.simulatorReady")
    timing = p.evaluate("performance.getEntriesByType('navigation')[0].toJSON()")
    rows = p.locator("#calls tbody tr")
    expect(rows).to_have_count(500)  # the table keeps the newest 500
    expect(p.locator("#calls-status")).to_contain_text(f"of {CALLS} calls")
    filter_ms = p.evaluate(
        """() => {
            const started = performance.now();
            const select = document.querySelector("#c-function");
            select.value = "6";
            select.dispatchEvent(new Event("change"));
            document.body.offsetHeight;  // force the layout
            return performance.now() - started;
        }"""
    )
    expect(p.locator("#calls tbody tr:not(.is-hidden)")).to_have_count(0)
    print(
        f"\n10000 calls: the calls page ready {ready:.0f} ms after navigation start "
        f"(response end {timing['responseEnd']:.0f} ms, DOMContentLoaded "
        f"{timing['domContentLoadedEventEnd']:.0f} ms, load {timing['loadEventEnd']:.0f} ms); "
        f"the function filter over 500 rows {filter_ms:.1f} ms"
    )
    assert ready < 10_000  # a sanity bound, not a performance target
    with modbus_client(simulator.modbus) as client:
        read(client, 8)
    expect(rows.first).to_have_attribute("data-address", "8", timeout=LIVE)
    expect(rows).to_have_count(500)
    assert page.problems() == []


# -- the token ----------------------------------------------------------------------------------


def test_a_token_is_given_once_in_the_login_form(new_page: Any) -> None:
    running = start_simulator(token="s3cret")
    try:
        page = new_page()
        p = page.page
        p.goto(running.url + "/api/calls")
        expect(p.get_by_role("heading", level=1)).to_have_text("Log in")
        p.get_by_label("Token").fill("wrong")
        p.get_by_role("button", name="Log in").click()
        expect(p.locator(".message")).to_have_text("wrong token")
        p.get_by_label("Token").fill("s3cret")
        p.get_by_role("button", name="Log in").click()
        expect(p).to_have_url(running.url + "/api/calls")
        expect(p.locator("html")).to_have_attribute("data-ready", "1")
        cookie = next(c for c in p.context.cookies() if c["name"] == "trio_modbus_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        with modbus_client(running.modbus) as client:  # the live stream works with the cookie
            read(client, 6)
        expect(p.locator("#calls tbody tr").first).to_have_attribute(
            "data-address", "6", timeout=LIVE
        )
        # the two 401 answers before the login are the only failed requests
        assert [f for f in page.problems() if " 401" not in f] == []
    finally:
        stop_simulator(running)
