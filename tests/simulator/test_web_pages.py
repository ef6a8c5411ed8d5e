"""The web pages without a browser: headers, escaping, overrides, the login, ``build_html``.

What the pages do in a browser is in ``browser/``; here, the HTML the server sends.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jinja2
import pytest
import trio

from trio_modbus.server import ModbusSimulatorServer
from trio_modbus.simulator._web import CONTENT_SECURITY_POLICY, SESSION_COOKIE

from ._support import document

TIMEOUT = 20
SCRIPT = "<script>alert(1)</script>"
PAGES = ("/", "/api/registers", "/api/calls", "/api/faults", "/api/log", "/api/server", "/login")


def _config() -> dict[str, Any]:
    return document(
        string=[{"addr": [0, 12], "value": SCRIPT}], uint16=[[13, 19]], write=[[13, 19]]
    )


@pytest.fixture
async def sim() -> AsyncIterator[ModbusSimulatorServer]:
    with trio.fail_after(TIMEOUT):
        async with ModbusSimulatorServer(
            http_host="127.0.0.1", http_port=0, modbus_port=0, config=_config()
        ) as simulator:
            yield simulator


def _client(sim: ModbusSimulatorServer, **options: Any) -> httpx.AsyncClient:
    assert sim.http_address is not None
    return httpx.AsyncClient(base_url="http://{}:{}".format(*sim.http_address), **options)


async def test_every_page_is_html_under_a_strict_content_security_policy(
    sim: ModbusSimulatorServer,
) -> None:
    async with _client(sim) as http:
        for path in PAGES:
            response = await http.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith("text/html"), path
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["x-content-type-options"] == "nosniff"
            page = response.text
            # nothing a strict policy would block: no inline script, style or handler
            assert not re.search(r"<script(?![^>]*\bsrc=)", page), path
            assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page), path
            assert '<script type="module" src="/static/app.js"></script>' in page
        api = await http.get("/api/v1/status")
        assert api.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


async def test_static_files_are_served_and_nothing_outside(sim: ModbusSimulatorServer) -> None:
    async with _client(sim) as http:
        script = await http.get("/static/app.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert "EventSource" in script.text and "innerHTML" not in script.text
        style = await http.get("/static/style.css")
        assert style.headers["content-type"].startswith("text/css")
        for path in (
            "/static/%2e%2e/_web.py",
            "/static/..%2f_web.py",
            "/static/%2e%2e%2f%2e%2e%2f__init__.py",
            "/static/templates/../../_web.py",
            "/static//etc/passwd",
            "/static/nope.js",
        ):
            response = await http.get(path)
            assert response.status_code == 404, path
            assert "import" not in response.text, path


async def test_web_app_path_overrides_templates_and_static_files_one_by_one(
    tmp_path: Path,
) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "static").mkdir()
    (tmp_path / "templates" / "log.html").write_text(
        '{% extends "base.html" %}{% block content %}<p id="mine">my log: {{ footer }}</p>'
        "{% endblock %}"
    )
    (tmp_path / "static" / "style.css").write_text("body { color: teal; }\n")
    (tmp_path / "static" / "extra.txt").write_text("extra\n")
    with trio.fail_after(TIMEOUT):
        async with (
            ModbusSimulatorServer(
                http_host="127.0.0.1", http_port=0, modbus_port=0, web_app_path=tmp_path
            ) as simulator,
            _client(simulator) as http,
        ):
            log = await http.get("/api/log")
            assert '<p id="mine">my log: ' in log.text and "<nav" in log.text  # base stays
            registers = await http.get("/api/registers")
            assert "Filter registers" in registers.text  # the package's template
            assert (await http.get("/static/style.css")).text == "body { color: teal; }\n"
            assert (await http.get("/static/extra.txt")).text == "extra\n"
            assert "EventSource" in (await http.get("/static/app.js")).text


async def test_hostile_strings_are_escaped_in_cells_log_calls_and_errors(
    sim: ModbusSimulatorServer,
) -> None:
    assert sim.modbus_address is not None
    logging.getLogger("trio_modbus.simulator").warning("log %s", SCRIPT)
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream(*sim.modbus_address[:2])
        async with stream:
            await stream.send_all(struct.pack(">HHHBBHH", 1, 0, 6, 1, 3, 13, 1))
            await stream.receive_some(100)
    recorder = sim.device.recorder
    recorder.append(dataclasses.replace(recorder[-1], seq=recorder[-1].seq + 1, peer=SCRIPT))
    async with _client(sim) as http:
        pages = [
            await http.get("/api/registers", params={"submit": "Add", "range_start": "0"}),
            await http.get("/api/log"),
            await http.get("/api/calls"),
            await http.get("/api/faults", params={"submit": "Add", "action": SCRIPT}),
            await http.get("/api/registers", params={"submit": "Set", "register": SCRIPT}),
            await http.get("/login", params={"next": f'/"><b>{SCRIPT}'}),
        ]
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for response in pages:
        assert SCRIPT not in response.text, response.url
        assert "<b>" not in response.text
    for response in pages[:5]:
        assert escaped in response.text, response.url
    assert [r.status_code for r in pages] == [200, 200, 200, 400, 400, 200]
    assert f"<td>{escaped}</td>" in pages[2].text  # the peer


async def test_a_token_is_given_once_at_login_and_kept_in_a_strict_cookie() -> None:
    with trio.fail_after(TIMEOUT):
        async with ModbusSimulatorServer(
            http_host="127.0.0.1", http_port=0, modbus_port=0, token="s3cret"
        ) as simulator:
            async with _client(simulator) as http:
                refused = await http.get("/api/registers")
                assert refused.status_code == 401
                assert 'action="/login"' in refused.text
                assert 'name="next" value="/api/registers"' in refused.text
                assert (await http.get("/")).status_code == 401
                assert (await http.get("/static/style.css")).status_code == 200
                form = {"token": "nope", "next": "/api/calls"}
                wrong = await http.post("/login", data=form)
                assert wrong.status_code == 401 and "wrong token" in wrong.text
                assert SESSION_COOKIE not in wrong.cookies
                foreign = await http.post(
                    "/login",
                    data={"token": "s3cret"},
                    headers={"origin": "http://evil.example"},
                )
                assert foreign.status_code == 403 and SESSION_COOKIE not in foreign.cookies
                right = await http.post("/login", data={"token": "s3cret", "next": "//evil/x"})
                assert right.status_code == 303 and right.headers["location"] == "/"
                cookie = right.headers["set-cookie"]
                assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace(
                    "Strict", "strict"
                )
                assert "s3cret" not in cookie
                # the cookie opens the pages and the JSON API...
                assert (await http.get("/api/registers")).status_code == 200
                assert (await http.get("/api/v1/status")).status_code == 200
                # ...and the browser checks stay: no form posts, no foreign origin
                form_post = await http.post("/api/v1/faults", data={"action": "no_reply"})
                assert form_post.status_code == 400
                foreign_json = await http.post(
                    "/api/v1/faults",
                    json={"action": "no_reply"},
                    headers={"origin": "http://evil.example"},
                )
                assert foreign_json.status_code == 403
                cross_page = await http.get(
                    "/api/server",
                    params={"submit": "Restart"},
                    headers={"sec-fetch-site": "cross-site"},
                )
                assert cross_page.status_code == 403
                assert simulator.device.faults.rules == []
                added = await http.post("/api/v1/faults", json={"action": "no_reply"})
                assert added.status_code == 201
            async with _client(simulator, cookies={SESSION_COOKIE: "forged"}) as other:
                assert (await other.get("/api/v1/status")).status_code == 401
                bearer = await other.get(
                    "/api/v1/status", headers={"authorization": "Bearer s3cret"}
                )
                assert bearer.status_code == 200


async def test_login_without_a_token_says_so(sim: ModbusSimulatorServer) -> None:
    async with _client(sim) as http:
        page = await http.get("/login", params={"next": "/api/log"})
        assert "needs no token" in page.text and 'href="/api/log"' in page.text


def test_build_html_renders_a_template_text_escaped() -> None:
    sim = ModbusSimulatorServer(config=_config(), http_port=0)
    html = sim.build_html(
        "<ul>{% for row in rows %}<li>{{ row.name }}={{ row.value }}</li>{% endfor %}</ul>",
        {"rows": [{"name": "a", "value": 1}, {"name": SCRIPT, "value": "&"}]},
    )
    assert html == ("<ul><li>a=1</li><li>&lt;script&gt;alert(1)&lt;/script&gt;=&amp;</li></ul>")
    with pytest.raises(ValueError, match="'missing' is undefined") as raised:
        sim.build_html("{{ missing }}", {})
    assert isinstance(raised.value.__cause__, jinja2.UndefinedError)
    with pytest.raises(ValueError, match="the HTML template"):
        sim.build_html("{% for %}", {})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"action": "exception", "code": "6", "seconds": "1"}, "seconds is not a parameter of"),
        ({"action": "exception", "code": "x"}, "code='x' is not an integer"),
        ({"action": "delay", "seconds": "1", "address": "1..b"}, "address='b'"),
        ({"action": "nope"}, "action='nope'; valid: delay"),
        ({"action": "exception"}, "exception"),
        ({"action": "delay", "seconds": "nan"}, "seconds='nan' is not a finite number"),
        ({"action": "delay", "seconds": "inf"}, "seconds='inf' is not a finite number"),
        ({"action": "delay", "seconds": "1e400"}, "is not a finite number"),
        ({"action": "no_reply", "duration": "nan"}, "is not a finite number"),
        ({"action": "garbage", "size": "99999999999999999999"}, "give an integer 0..65535"),
        ({"action": "garbage", "size": "-3"}, "size=-3; give an integer 0..65535"),
        ({"action": "split", "pieces": "100000"}, "pieces=100000; give an integer 2..256"),
    ],
)
async def test_a_bad_fault_form_is_refused_and_adds_nothing(
    sim: ModbusSimulatorServer, params: dict[str, str], message: str
) -> None:
    async with _client(sim) as http:
        response = await http.get("/api/faults", params={"submit": "Add", **params})
    assert response.status_code == 400
    assert message in response.text.replace("&#39;", "'")
    assert sim.device.faults.rules == []


async def test_the_faults_form_takes_every_kind_of_field(sim: ModbusSimulatorServer) -> None:
    form = {
        "submit": "Add",
        "action": "garbage",
        "size": "0x10",
        "then_close": "1",
        "unit": "1,2",
        "function": "3",
        "address": "10..20",
        "times": "3",
        "skip": "1",
        "duration": "60",
        "probability": "0.5",
        "seed": "7",
        "phase": "after",
    }
    async with _client(sim) as http:
        response = await http.get("/api/faults", params=form)
        rule = (await http.get("/api/v1/faults")).json()["faults"][0]
        page = await http.get("/api/faults")
        delete = await http.get("/api/faults", params={"submit": "Delete", "rule": rule["id"]})
    assert response.status_code == 200
    assert {k: rule[k] for k in ("size", "then_close", "unit", "address", "times", "skip")} == {
        "size": 16,
        "then_close": True,
        "unit": [1, 2],
        "address": "10..20",
        "times": 3,
        "skip": 1,
    }
    assert (rule["duration"], rule["probability"], rule["seed"], rule["phase"]) == (
        60,
        0.5,
        7,
        "after",
    )
    assert "size=16, then_close=True" in page.text and "unit=[1, 2]" in page.text
    assert delete.status_code == 200 and sim.device.faults.rules == []


async def test_the_typed_set_form(sim: ModbusSimulatorServer) -> None:
    async with _client(sim) as http:
        ok = await http.get(
            "/api/registers",
            params={"submit": "Set", "register": "13", "value": "-2", "value_type": "int16"},
        )
        little = await http.get(
            "/api/registers",
            params={
                "submit": "Set",
                "register": "14",
                "value": "0x12345678",
                "value_type": "uint32",
                "word_order": "little",
            },
        )
        bad = await http.get(
            "/api/registers",
            params={"submit": "Set", "register": "15", "value": "abc", "value_type": "float32"},
        )
    assert ok.status_code == 200 and sim.data.cells[13].value == 0xFFFE
    assert little.status_code == 200
    assert (sim.data.cells[14].value, sim.data.cells[15].value) == (0x5678, 0x1234)
    assert bad.status_code == 400 and "value='abc' is not a number" in bad.text.replace(
        "&#39;", "'"
    )


@pytest.mark.parametrize(
    "target",
    [
        "/api/calls?f_unit=abc",
        "/api/calls?f_function=1e5",
        "/api/calls?f_address=xyz&download=jsonl",
        "/api/log?since=abc",
        "/api/registers?submit=Add&range_start=x",
    ],
)
async def test_a_bad_filter_is_a_400_page_never_a_500(
    sim: ModbusSimulatorServer, target: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with _client(sim) as http:
        response = await http.get(target)
    assert response.status_code == 400
    assert "Result of last command" in response.text
    assert "Traceback" not in caplog.text


async def test_a_refresh_reloads_the_view_never_the_action(sim: ModbusSimulatorServer) -> None:
    async with _client(sim) as http:
        assert (await http.get("/api/faults", params={"refresh": "2"})).status_code == 200
        added = await http.get(
            "/api/faults", params={"submit": "Add", "action": "no_reply", "unit": "3"}
        )
        assert added.status_code == 200 and len(sim.device.faults.rules) == 1
        assert (
            '<meta http-equiv="refresh" content="2; url=/api/faults?action=no_reply&amp;unit=3">'
            in (added.text)
        )
        cross = await http.get(
            "/api/registers", params={"refresh": "1"}, headers={"sec-fetch-site": "cross-site"}
        )
        assert cross.status_code == 403  # the refresh rate is every page's: state
        assert 'content="2;' in (await http.get("/api/log")).text


async def test_static_names_with_a_null_byte_are_not_found(sim: ModbusSimulatorServer) -> None:
    async with _client(sim) as http:
        assert (await http.get("/static/app.js%00")).status_code == 404
        assert (await http.get("/static/app.js")).status_code == 200


async def test_a_login_target_that_hides_a_host_goes_home() -> None:
    from trio_modbus.simulator._web import _local_target

    assert _local_target("/\t/evil.example") == "/"  # urlsplit drops the tab
    assert _local_target("/api/calls?f_unit=1") == "/api/calls?f_unit=1"
    for target in ("//evil.example", "https://evil.example/", "\\evil", "", None):
        assert _local_target(target) == "/"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"submit": "View", "since": float("inf")}, "since=inf is not an integer"),
        ({"submit": "View", "range_start": 1.5}, "Invalid range parameters"),  # pymodbus's
        ({"submit": "View", "range_start": True}, "Invalid range parameters"),
    ],
)
async def test_restapi_integers_are_integers(
    sim: ModbusSimulatorServer, body: dict[str, Any], message: str
) -> None:
    import json

    page = "log" if "since" in body else "registers"
    async with _client(sim) as http:
        response = await http.post(
            f"/restapi/{page}",
            content=json.dumps(body),  # Infinity: Python's json writes it, and reads it
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    assert message in response.json()["error"]
