"""pymodbus's simulator endpoints (/restapi/<page>, /api/<page>) against pymodbus's own answers.

``golden/pymodbus-3.12.1.json`` and ``golden/pymodbus-3.16.1.json`` hold what pymodbus's real
``ModbusSimulatorServer`` answered to ``golden/requests.json`` with ``golden/setup.json``
(``golden/capture.py`` made them; see its docstring). The same requests, in the same order, go
to ours; the keys must be the same as both versions' and the values too, except for the
differences listed below, each on purpose.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from trio_modbus.server import ModbusSimulatorServer
from trio_modbus.testing import raw

GOLDEN = Path(__file__).resolve().parent / "golden"
VERSIONS = ("3.12.1", "3.16.1")
GOLDENS = {v: json.loads((GOLDEN / f"pymodbus-{v}.json").read_text()) for v in VERSIONS}
PYMODBUS = GOLDENS["3.12.1"]
REQUESTS = json.loads((GOLDEN / "requests.json").read_text())
TIMEOUT = 20

# The differences, on purpose. Bad input: a 4xx status (pymodbus: 200 with the same
# {"result": "error"} shape, or 500 for a body that is not JSON) and our own message.
REFUSED = {
    "registers_no_submit",
    "registers_bad_range",
    "calls_simulate_missing_field",
    "calls_no_submit",
    "registers_malformed_json",
}
# pymodbus's log and server endpoints are stubs answering an error; ours answer.
IMPLEMENTED = {
    "log": {"result", "log_rows", "footer"},
    "server": {
        "result",
        "footer",
        "uptime",
        "modbus",
        "http",
        "units",
        "statistics",
        "calls",
        "faults",
    },
}
# Keys we add: the ids of the fault rules "Simulate" created.
EXTRA_KEYS = {"calls": {"fault_rules"}}


def _function_names(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """pymodbus names every function "function code name"; ours are the real names."""
    return [{**v, "text": "function code name"} for v in values]


def _error_names(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """pymodbus spells code 10 GATEWAY_PATH_UNAVIABLE."""
    return [{**v, "text": "GATEWAY_PATH_UNAVIABLE"} if v["value"] == 10 else v for v in values]


VALUE_FIXES = {"function_codes": _function_names, "function_error": _error_names}
# pymodbus 3.16 lists the cell types of its new enum (upper case, other ids, with INT64 and
# UINT64 that its JSON simulator cannot load) while its rows and the "type" filter still work
# on the same cells; ours are 3.12's names and ids, which our filter takes.
VERSION_DIFFERENCES = {"3.16.1": {"register_types"}}


async def _replay(sim: ModbusSimulatorServer) -> dict[str, httpx.Response]:
    assert sim.http_address is not None
    host, port = sim.http_address
    answers = {}
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
        for request in REQUESTS:
            if request.get("method") == "GET":
                response = await http.get(request["path"], params=request.get("params"))
            elif "json" in request:
                response = await http.post(request["path"], json=request["json"])
            else:
                response = await http.post(
                    request["path"],
                    content=request["content"],
                    headers={"content-type": request["content_type"]},
                )
            answers[request["name"]] = response
    return answers


@pytest.fixture(scope="module")
def ours() -> dict[str, httpx.Response]:
    async def main() -> dict[str, httpx.Response]:
        with trio.fail_after(TIMEOUT):
            async with ModbusSimulatorServer(
                http_host="127.0.0.1", http_port=0, json_file=GOLDEN / "setup.json"
            ) as sim:
                return await _replay(sim)

    return trio.run(main)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_golden_files_are_pymodbus_s(version: str) -> None:
    assert GOLDENS[version]["pymodbus"] == version
    assert [a["name"] for a in GOLDENS[version]["answers"]] == [r["name"] for r in REQUESTS]


@pytest.mark.parametrize(
    ("version", "theirs"),
    [
        (version, answer)
        for version in VERSIONS
        for answer in GOLDENS[version]["answers"]
        if answer["content_type"] != "text/html"
    ],
    ids=lambda value: value["name"] if isinstance(value, dict) else value,
)
def test_json_answers_have_pymodbus_keys_and_values(
    ours: dict[str, httpx.Response], version: str, theirs: dict[str, Any]
) -> None:
    name = theirs["name"]
    response = ours[name]
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    if name in REFUSED:
        assert response.status_code == 400
        assert set(body) == {"result", "error"} and body["result"] == "error"
        if isinstance(theirs["body"], dict):
            assert theirs["body"]["result"] == "error"  # pymodbus refused it too, with 200
        else:
            assert theirs["status"] == 500  # pymodbus failed on it
        return
    assert response.status_code == theirs["status"] == 200
    if name in IMPLEMENTED:
        assert theirs["body"]["error"].endswith("endpoint not implemented")
        assert set(body) == IMPLEMENTED[name] and body["result"] == "ok"
        return
    page = name.split("_")[0]
    assert set(body) == set(theirs["body"]) | EXTRA_KEYS.get(page, set())
    for key, expected in theirs["body"].items():
        if key in VERSION_DIFFERENCES.get(version, set()):
            continue
        fix = VALUE_FIXES.get(key)
        assert (fix(body[key]) if fix else body[key]) == expected, key


def test_the_golden_exercises_the_values_that_matter() -> None:
    answers = {a["name"]: a["body"] for a in PYMODBUS["answers"]}
    rows = {r["index"]: r for r in answers["registers_view_range"]["register_rows"]}
    assert rows["12-13"]["value"] == "305419896" and rows["14-15"]["value"] == "3.5"
    assert rows["16-18"]["value"] == "<b>&x " and rows["4"]["value"] == "0x1234"
    assert answers["calls_simulate_error"]["function_response_error_checked"] is True


def _form_fields(page: str) -> set[str]:
    return set(re.findall(r'<(?:input|select|button)[^>]*\bname="?([a-z_]+)', page))


def _headers(page: str) -> list[str]:
    """The column headers of each table's head."""
    heads = re.findall(r"<thead>(.*?)</thead>", page, re.DOTALL)
    return [h for head in heads for h in re.findall(r'<th(?: [a-z]+="[^"]*")*>([^<]+)</th>', head)]


# Columns on purpose not pymodbus's: the log's one "Log entries" column is split in four.
OWN_COLUMNS = {"page_log": ["Time", "Level", "Logger", "Message"]}


@pytest.mark.parametrize(
    "theirs",
    [a for a in PYMODBUS["answers"] if a["content_type"] == "text/html"],
    ids=lambda a: a["name"],
)
def test_pages_have_pymodbus_structure(
    ours: dict[str, httpx.Response], theirs: dict[str, Any]
) -> None:
    """pymodbus's title, every form field of its page and its table's columns, in order.

    Ours have more (the web UI's filters, the typed Set, the call log): a superset.
    """
    response = ours[theirs["name"]]
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert _form_fields(theirs["body"]) <= _form_fields(page)
    columns = OWN_COLUMNS.get(theirs["name"]) or _headers(theirs["body"])
    ours_columns = _headers(page)
    assert any(ours_columns[i : i + len(columns)] == columns for i in range(len(ours_columns))), (
        columns,
        ours_columns,
    )
    heading = re.search(r"<h1>(?:<center>)?([A-Za-z]+)", theirs["body"])
    assert heading is not None and f"<h1>{heading[1]}</h1>" in page


def test_pymodbus_pages_leave_the_string_unescaped_and_ours_escape_it(
    ours: dict[str, httpx.Response],
) -> None:
    theirs = {a["name"]: a["body"] for a in PYMODBUS["answers"]}["page_registers"]
    assert "<td><b>&x </td>" in theirs  # pymodbus puts the cell's text in the page as is
    assert '<td class="value">&lt;b&gt;&amp;x </td>' in ours["page_registers"].text


# -- Simulate and Monitor act ---------------------------------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[ModbusSimulatorServer]:
    with trio.fail_after(TIMEOUT):
        async with ModbusSimulatorServer(
            http_host="127.0.0.1", http_port=0, json_file=GOLDEN / "setup.json"
        ) as simulator:
            yield simulator


def _client(sim: ModbusSimulatorServer) -> httpx.AsyncClient:
    assert sim.http_address is not None
    return httpx.AsyncClient(base_url="http://{}:{}".format(*sim.http_address))


SIMULATE = {
    "submit": "Simulate",
    "response_delay": "",
    "response_junk_datalen": "",
    "response_error": "0",
    "response_clear_after": "1",
}


async def test_simulate_error_answers_the_next_requests_then_is_spent(
    sim: ModbusSimulatorServer,
) -> None:
    async with _client(sim) as http, raw.connect(sim.modbus_address) as client:
        form = {
            **SIMULATE,
            "response_type": "1",
            "response_error": "6",
            "response_clear_after": "2",
        }
        answer = (await http.post("/restapi/calls", json=form)).json()
        assert answer["simulation_action"] == "ACTIVE" and len(answer["fault_rules"]) == 1
        replies = [await client.request(raw.read_holding_registers(10, 1)) for _ in range(3)]
        assert [r.exception_code for r in replies] == [6, 6, None]
        after = (await http.post("/restapi/calls", json={"submit": "View"})).json()
        assert after["simulation_action"] == ""  # spent: the rule is gone
        assert (await http.get("/api/v1/faults")).json() == {"faults": []}


async def test_simulate_empty_and_junk(sim: ModbusSimulatorServer) -> None:
    async with _client(sim) as http, raw.connect(sim.modbus_address) as client:
        await http.post("/restapi/calls", json={**SIMULATE, "response_type": "2"})
        with trio.move_on_after(0.5) as waited:
            await client.request(raw.read_holding_registers(10, 1))
        assert waited.cancelled_caught  # no reply
        await http.post(
            "/restapi/calls",
            json={**SIMULATE, "response_type": "3", "response_junk_datalen": "5"},
        )
        [junk] = (await http.get("/api/v1/faults")).json()["faults"]
        assert junk["action"] == "garbage" and junk["size"] == 5 and junk["times"] == 1
        calls = (await http.get("/api/v1/calls")).json()["calls"]
        assert calls[0]["reply"] == "no reply" and calls[0]["faults"] == ["NoReply()"]


async def test_simulate_delay_with_change_rate_is_a_delay_rule_with_a_probability(
    sim: ModbusSimulatorServer,
) -> None:
    async with _client(sim) as http:
        form = {
            **SIMULATE,
            "response_type": "0",
            "response_delay": "2",
            "response_cr": "on",
            "response_cr_pct": "50",
            "response_clear_after": "0",  # 0: until Reset
        }
        assert (await http.post("/restapi/calls", json=form)).status_code == 200
        [rule] = (await http.get("/api/v1/faults")).json()["faults"]
        assert (rule["action"], rule["seconds"], rule["probability"], rule["times"]) == (
            "delay",
            2,
            0.5,
            None,
        )
        again = {**form, "response_delay": "", "response_split": "on", "split_delay": "1"}
        await http.post("/restapi/calls", json=again)  # replaces the previous rule
        [split] = (await http.get("/api/v1/faults")).json()["faults"]
        assert split["action"] == "split" and split["gap"] == 1 and split["id"] != rule["id"]
        reset = (await http.post("/restapi/calls", json={"submit": "Reset"})).json()
        assert reset["simulation_action"] == "" and reset["function_response_junk"] == 10
        assert (await http.get("/api/v1/faults")).json() == {"faults": []}


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"response_type": "7"}, "response_type=7"),
        ({"response_type": "x"}, "response_type='x'"),
        ({"response_type": "1", "response_error": "0"}, "response_error=0"),
        (
            {"response_type": "0", "response_delay": "1", "response_split": "on"},
            "cannot both apply",
        ),
        ({"response_type": "0", "response_cr": "on", "response_cr_pct": "150"}, "0..100"),
        ({"response_type": "2", "response_clear_after": "-1"}, "clear_after=-1"),
    ],
)
async def test_a_bad_simulate_form_is_refused_and_changes_nothing(
    sim: ModbusSimulatorServer, form: dict[str, str], message: str
) -> None:
    async with _client(sim) as http:
        await http.post("/restapi/calls", json={**SIMULATE, "response_type": "2"})
        before = (await http.get("/api/v1/faults")).json()
        response = await http.post("/restapi/calls", json={**SIMULATE, **form})
        assert response.status_code == 400
        assert message in response.json()["error"]
        assert (await http.get("/api/v1/faults")).json() == before


async def test_monitor_lists_the_calls_from_then_on(sim: ModbusSimulatorServer) -> None:
    async with _client(sim) as http, raw.connect(sim.modbus_address) as client:
        await client.request(raw.read_holding_registers(5, 1))  # before: not listed
        form = {"submit": "Monitor", "function": "3", "range_start": "5", "range_stop": "9"}
        started = (await http.post("/restapi/calls", json={**form, "show_decode": "on"})).json()
        assert started["foot"] == "Monitoring active" and started["range_start"] == 5
        await client.request(raw.read_holding_registers(6, 2))
        await client.request(raw.read_holding_registers(20, 1))  # outside the range
        await client.request(raw.read_coils(5, 1))  # another function
        rows = (await http.post("/restapi/calls", json={"submit": "View"})).json()["call_rows"]
        assert [(r["call"], r["fc"], r["address"], r["count"]) for r in rows] == [
            (True, 3, 6, 2),
            (False, 3, 6, 2),
        ]
        assert "ReadRegistersRequest" in rows[0]["data"]
        stopped = (await http.post("/restapi/calls", json={"submit": "Stop"})).json()
        assert stopped["foot"] == "Stopped monitoring" and stopped["call_rows"] == []


# -- registers, log and server --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"register": "", "value": "1"}, "Missing register"),
        ({"register": "999", "value": "1"}, "register='999'"),
        ({"register": "10", "value": "70000"}, "0..65535"),
        ({"register": "10", "value": "abc"}, "value='abc'"),
    ],
)
async def test_a_bad_set_is_refused_and_changes_nothing(
    sim: ModbusSimulatorServer, form: dict[str, str], message: str
) -> None:
    before = [(c.value, c.writable) for c in sim.data.cells]
    async with _client(sim) as http:
        response = await http.post("/restapi/registers", json={"submit": "Set", **form})
    assert response.status_code == 400 and message in response.json()["error"]
    assert [(c.value, c.writable) for c in sim.data.cells] == before


async def test_set_at_register_0_works(sim: ModbusSimulatorServer) -> None:
    """pymodbus reads register "0" as missing; 0 is a register."""
    async with _client(sim) as http:
        response = await http.post(
            "/restapi/registers",
            json={"submit": "Set", "register": 0, "value": 5, "range_start": 0},
        )
    assert response.status_code == 200
    assert response.json()["register_rows"][0]["value"] == "5"


async def test_restapi_log_and_server_answer_for_real(sim: ModbusSimulatorServer) -> None:
    import logging

    async with _client(sim) as http:
        logging.getLogger("trio_modbus.simulator").warning("hello <log>")
        log = (await http.post("/restapi/log", json={"submit": "View"})).json()
        assert log["result"] == "ok"
        assert any(line["message"] == "hello <log>" for line in log["log_rows"])
        page = (await http.get("/api/log")).text
        assert "hello &lt;log&gt;" in page and "hello <log>" not in page
        download = await http.get("/api/log", params={"submit": "Download"})
        assert "hello <log>" in download.text
        assert download.headers["content-type"].startswith("text/plain")
        cleared = (await http.post("/restapi/log", json={"submit": "Clear"})).json()
        assert cleared["log_rows"] == []
        old_port = sim.modbus_address[1]
        server = (await http.post("/restapi/server", json={"submit": "Restart"})).json()
        assert server["footer"] == "restarted" and server["modbus"]["address"][1] == old_port
        assert server["modbus"]["address"] == list(sim.modbus_address)


@pytest.mark.parametrize(
    ("path", "options", "status"),
    [
        ("/restapi/nope", {"json": {"submit": "View"}}, 404),
        (
            "/restapi/registers",
            {
                "content": b"submit=Set",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            400,
        ),
        (
            "/restapi/registers",
            {"content": b'{"submit": "View"}', "headers": {"content-type": "text/plain"}},
            400,
        ),
        ("/restapi/registers", {"json": ["submit"]}, 400),
        (
            "/restapi/registers",
            {"json": {"submit": "View"}, "headers": {"origin": "http://evil.example"}},
            403,
        ),
    ],
)
async def test_restapi_refuses_what_is_not_a_json_object_from_here(
    sim: ModbusSimulatorServer, path: str, options: dict[str, Any], status: int
) -> None:
    async with _client(sim) as http:
        response = await http.post(path, **options)
    assert response.status_code == status
    assert response.json()["result"] == "error"


# -- the pages ------------------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"


async def test_everything_rendered_into_a_page_is_escaped(sim: ModbusSimulatorServer) -> None:
    async with _client(sim) as http:
        # cells 16..18 are a string of 3 registers: room for "<i>x<" only
        put = await http.put("/api/v1/registers/16", json={"value": "<i>x<", "type": "string"})
        assert put.status_code == 200
        page = await http.get(
            "/api/registers",
            params={"submit": "Add", "range_start": "16", "range_stop": "16"},
        )
        assert '<td class="value">&lt;i&gt;x&lt; </td>' in page.text and "<i>" not in page.text
        hostile = await http.get(
            "/api/registers", params={"submit": "Set", "register": SCRIPT, "value": "1"}
        )
        assert hostile.status_code == 400
        assert SCRIPT not in hostile.text and "&lt;script&gt;" in hostile.text


async def test_a_string_cell_holding_a_script_is_escaped(tmp_path: Path) -> None:
    setup = json.loads((GOLDEN / "setup.json").read_text())
    device = setup["device_list"]["device"]
    device["setup"]["hr size"] = device["setup"]["co size"] = 60
    device["string"].append({"addr": [40, 52], "value": SCRIPT})
    (tmp_path / "setup.json").write_text(json.dumps(setup))
    with trio.fail_after(TIMEOUT):
        async with (
            ModbusSimulatorServer(
                http_host="127.0.0.1", http_port=0, json_file=tmp_path / "setup.json"
            ) as simulator,
            _client(simulator) as http,
        ):
            page = await http.get(
                "/api/registers",
                params={"submit": "Add", "range_start": "40", "range_stop": "52"},
            )
            rest = await http.post(
                "/restapi/registers", json={"submit": "View", "range_start": 40}
            )
    assert page.status_code == 200
    assert SCRIPT not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert rest.json()["register_rows"][0]["value"].startswith(SCRIPT)  # JSON: as it is


async def test_pages_answer_and_refuse_cross_site_changes(sim: ModbusSimulatorServer) -> None:
    async with _client(sim) as http:
        for page in ("/", "/api/registers", "/api/calls", "/api/log", "/api/server"):
            response = await http.get(page)
            assert response.status_code == 200, page
            assert response.headers["content-type"].startswith("text/html")
        assert (await http.get("/api/nope")).status_code == 404
        refresh = await http.get("/api/registers", params={"refresh": "5"})
        assert '<meta http-equiv="refresh" content="5; url=/api/registers">' in refresh.text
        cross = await http.get(
            "/api/registers",
            params={"submit": "Set", "register": "10", "value": "9"},
            headers={"sec-fetch-site": "cross-site"},
        )
        assert cross.status_code == 403 and sim.data.cells[10].value == 7
        same = await http.get(
            "/api/registers",
            params={"submit": "Set", "register": "10", "value": "9"},
            headers={"sec-fetch-site": "same-origin"},
        )
        assert same.status_code == 200 and sim.data.cells[10].value == 9


async def test_a_token_guards_the_pymodbus_endpoints_too() -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            ModbusSimulatorServer(
                http_host="127.0.0.1", http_port=0, json_file=GOLDEN / "setup.json", token="t"
            ) as simulator,
            _client(simulator) as http,
        ):
            assert (await http.get("/api/registers")).status_code == 401
            post = await http.post("/restapi/registers", json={"submit": "View"})
            assert post.status_code == 401
            authorized = {"authorization": "Bearer t"}
            ok = await http.post("/restapi/registers", json={"submit": "View"}, headers=authorized)
            assert ok.status_code == 200


def test_register_types_are_3_12s_in_both_versions(ours: dict[str, httpx.Response]) -> None:
    """The one value 3.16 changed: ours stay 3.12's, which our filter's ``type`` takes."""
    theirs_312 = {a["name"]: a["body"] for a in GOLDENS["3.12.1"]["answers"]}
    theirs_316 = {a["name"]: a["body"] for a in GOLDENS["3.16.1"]["answers"]}
    body = ours["registers_view_range"].json()
    assert body["register_types"] == theirs_312["registers_view_range"]["register_types"]
    assert set(theirs_316["registers_view_range"]["register_types"]) == {
        "INVALID", "BITS", "INT16", "UINT16", "INT32", "UINT32", "INT64", "UINT64",
        "FLOAT32", "FLOAT64", "STRING", "NEXT",
    }  # fmt: skip
    rows = body["register_rows"]
    assert rows == theirs_316["registers_view_range"]["register_rows"]
