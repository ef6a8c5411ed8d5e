"""The simulator's HTTP API (starlette, served by hypercorn's Trio worker).

``/api/v1`` is the native JSON API, with real status codes: status, calls, faults, log,
cells and registers, their event streams, the configuration, an export, restart and its own
OpenAPI description. Its fault rules take the same fields as a ``[[fault]]`` table of a faults
file (see ``trio_modbus.testing.load_faults``): one schema for files, Python and HTTP.
pymodbus's own endpoints (``/restapi/...`` and the ``/api/...`` pages) are in
``_compat_http``.

State-changing requests refuse form bodies and cross-origin browser requests, so a web page
elsewhere cannot drive the simulator through a visitor's browser.
"""

from __future__ import annotations

import collections
import dataclasses
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import trio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from trio_modbus._errors import ConfigurationError
from trio_modbus.pdu import FunctionCode

from ._datastore import VALUE_TYPES, SimulatorData

if TYPE_CHECKING:
    from trio_modbus.testing import RequestRecord
    from trio_modbus.testing.faults import Rule

    from ._server import ModbusSimulatorServer

__all__ = ["LogBuffer", "build_app"]

LOG_LINES = 1000  # log records the log endpoint keeps
CALLS_PAGE = 100  # calls a GET returns unless ?limit= says otherwise
MAX_BODY = 64 * 1024  # bytes a JSON request body may have
STREAM_TICK = 0.05  # seconds between two looks for new calls or log lines in a stream
STREAM_SETTLE = 1.0  # seconds a call waits for its reply before it is streamed without one
STREAM_KEEPALIVE = 15.0  # seconds of silence after which a stream sends a comment line
_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})


class LogBuffer(logging.Handler):
    """Keeps the last ``LOG_LINES`` log records of the ``trio_modbus`` loggers."""

    def __init__(self, capacity: int = LOG_LINES) -> None:
        super().__init__(logging.DEBUG)
        self.lines: collections.deque[dict[str, Any]] = collections.deque(maxlen=capacity)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        """Keep one record (as a JSON-ready dict)."""
        self.count += 1
        self.lines.append(
            {
                "seq": self.count,
                "time": record.created,
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _function_name(code: int) -> str:
    try:
        return FunctionCode(code).name.lower()
    except ValueError:
        return f"function_{code:02x}"


def record_json(record: RequestRecord, start: float) -> dict[str, Any]:
    """One call of the call log, as JSON."""
    from trio_modbus.testing._recorder import spans

    span = spans(record.request)
    peer = record.peer
    return {
        "seq": record.seq,
        "time": round(record.time - start, 6),
        "connection": record.connection,
        "peer": list(peer) if isinstance(peer, tuple) else (None if peer is None else str(peer)),
        "transport": record.transport,
        "transaction_id": record.transaction_id,
        "unit": record.unit,
        "function_code": record.function_code,
        "function": _function_name(record.function_code),
        "address": span[0][1] if span else None,
        "count": span[0][2] if span else None,
        "spans": [[first, count] for _, first, count in span],  # 0x17: the read, the write
        "request": record.summary(),
        "request_hex": record.raw_in.hex(" "),
        "reply": record.reply_summary(),
        "reply_hex": None if record.raw_out is None else record.raw_out.hex(" "),
        "exception_code": record.exception_code,
        "faults": list(record.faults),
        "rule_id": record.rule_id,
        "delivered": record.delivered,
        "latency": None if record.sent_at is None else round(record.sent_at - record.time, 6),
    }


def rule_json(rule: Rule, now: float) -> dict[str, Any]:
    """One fault rule, as JSON (the fields a POST takes, and its state)."""
    from trio_modbus.testing import FAULT_ACTIONS

    names = {cls: name for name, cls in FAULT_ACTIONS.items()}
    action = rule.action
    parameters = {
        f.name: (v.hex(" ") if isinstance(v := getattr(action, f.name), bytes) else v)
        for f in dataclasses.fields(action)
    }

    def match(value: Any) -> Any:
        if isinstance(value, range):
            return f"{value.start}..{value.stop - 1}"
        if isinstance(value, set | frozenset):
            return sorted(value)
        return value

    expires = None
    if rule.duration is not None and rule.added_at is not None:
        expires = max(0.0, rule.duration - (now - rule.added_at))
    return {
        "id": rule.id,
        "action": names.get(type(action), type(action).__name__),
        **parameters,
        "phase": rule.phase,
        **{
            key: match(getattr(rule, key))
            for key in ("unit", "function", "sub_function", "address", "nth", "connection")
            if getattr(rule, key) is not None
        },
        "times": rule.times,
        "skip": rule.skip,
        "duration": rule.duration,
        "probability": rule.probability,
        "seed": rule.seed,
        "matched": rule.matched,
        "fired": rule.fired,
        "remaining": None if rule.times is None else rule.times - rule.fired,
        "expires_in": expires,
    }


async def _json_body(request: Request) -> Any:
    """The request's JSON body; ValueError with a message when it is not JSON."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ValueError("send the body as application/json")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ValueError(f"the body is over {MAX_BODY} bytes")
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None


Endpoint = Callable[[Request], Awaitable[Response]]


def content_type(request: Request) -> str:
    """The media type of the request's body, lower case, without parameters."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def browser_refusal(
    request: Request, state_changing: bool, error: Callable[[int, str], Response] | None = None
) -> Response | None:
    """A 400/403 answer for a request a foreign web page could have made, else None.

    A state-changing request is refused when its body is a form (what an HTML form or a
    "simple" cross-origin fetch can send without asking), when the browser says it comes
    from another origin (``Origin`` not this host, or ``Sec-Fetch-Site`` cross-site or
    same-site).
    """
    if not state_changing:
        return None
    error = error or _error
    if content_type(request) in _FORM_TYPES:
        return error(400, "send the body as application/json (form posts are refused)")
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        if urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower():
            return error(403, f"cross-origin request from {origin} refused")
    elif origin == "null":
        return error(403, "cross-origin request from an opaque origin refused")
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return error(403, "cross-site request refused")
    return None


def guard(
    endpoint: Endpoint,
    token: str | None,
    *,
    state_changing: bool = False,
    error: Callable[[int, str], Response] = _error,
) -> Endpoint:
    """``endpoint`` behind the token (when given) and the browser checks.

    The token comes as ``Authorization: Bearer <token>``, or as the cookie ``POST /login``
    sets (a browser's pages); the browser checks apply to both.
    """
    from ._web import has_session

    async def check(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("authorization", "")
            if not (
                hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
                or has_session(request, token)
            ):
                return error(401, "give Authorization: Bearer <token> (or log in at /login)")
        changing = state_changing or request.method in _STATE_CHANGING
        refused = browser_refusal(request, changing, error)
        if refused is not None:
            return refused
        return await endpoint(request)

    return check


def event(seq: int, kind: str, payload: Any) -> str:
    """One server-sent event: its id, its type and one JSON object as data."""
    return f"id: {seq}\nevent: {kind}\ndata: {json.dumps(payload, allow_nan=False)}\n\n"


def stream_window(request: Request, latest: int) -> tuple[int, int | None]:
    """Where a stream starts and how many events it sends.

    It starts after ``Last-Event-ID`` or ``?since=``, else after ``latest`` (only what comes
    next); ``?limit=N`` ends it after N events (else it runs until the simulator stops).

    Raises:
        ValueError: One of them is not an integer, or the limit is below 1.
    """
    given = request.headers.get("last-event-id", request.query_params.get("since"))
    limit = request.query_params.get("limit")
    try:
        start = latest if given is None else int(given)
    except ValueError:
        raise ValueError(
            f"Last-Event-ID / since = {given!r}: give an event id (an integer)"
        ) from None
    if limit is None:
        return start, None
    try:
        count = int(limit)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"limit = {limit!r}: give 1 or more events")
    return start, count


def status_json(simulator: ModbusSimulatorServer) -> dict[str, Any]:
    """The simulator's status: uptime, addresses, clients, units, statistics, counts."""
    server = simulator.modbus_server
    statistics = dataclasses.asdict(server.statistics) if server is not None else {}
    started = simulator.started_at
    return {
        "uptime": None if started is None else round(trio.current_time() - started, 3),
        "modbus": {
            "comm": simulator.server_config.comm,
            "address": _address(simulator.modbus_address),
            "listening": simulator.listening,
            "clients": [
                _address(conn.peer) for conn in getattr(server, "connections", ()) if conn.peer
            ],
        },
        "http": _address(simulator.http_address),
        "units": sorted(simulator.device.datastore),
        "statistics": statistics,
        "calls": len(simulator.device.recorder),
        "faults": len(simulator.device.faults.rules),
    }


def build_app(simulator: ModbusSimulatorServer, *, token: str | None = None) -> Starlette:
    """The simulator's HTTP application.

    Args:
        simulator: The simulator it shows and steers.
        token: When given, every ``/api/v1`` request needs ``Authorization: Bearer <token>``.

    Returns:
        An ASGI application.
    """
    from trio_modbus.testing import add_faults

    from ._compat_http import compat_routes
    from ._export import config_document, export_document
    from ._web import SecurityHeaders, web_routes

    def guarded(endpoint: Endpoint) -> Endpoint:
        return guard(endpoint, token)

    def now() -> float:
        return trio.current_time()

    async def status(request: Request) -> Response:
        return JSONResponse(status_json(simulator))

    async def calls(request: Request) -> Response:
        query = request.query_params
        try:
            limit = int(query.get("limit", CALLS_PAGE))
            since = int(query.get("since", 0))
            unit = None if "unit" not in query else int(query["unit"])
            function = None if "function" not in query else int(query["function"], 0)
            address = None if "address" not in query else int(query["address"])
        except ValueError:
            return _error(400, "limit, since, unit, function and address are integers")
        if limit < 1:
            return _error(400, f"limit={limit}; give 1 or more")
        errors_only = query.get("errors") in ("1", "true", "yes")
        start = simulator.started_at or 0.0
        selected = []
        for record in simulator.device.recorder:
            if record.seq <= since:
                continue
            if unit is not None and record.unit != unit:
                continue
            if function is not None and record.function_code != function:
                continue
            if address is not None and not _touches(record, address):
                continue
            if errors_only and record.exception_code is None and record.delivered:
                continue
            selected.append(record)
        return JSONResponse(
            {
                "total": len(simulator.device.recorder),
                "calls": [record_json(r, start) for r in selected[-limit:]],
            }
        )

    async def clear_calls(request: Request) -> Response:
        simulator.device.recorder.clear()
        return Response(status_code=204)

    async def faults(request: Request) -> Response:
        current = now()
        return JSONResponse(
            {"faults": [rule_json(r, current) for r in simulator.device.faults.rules]}
        )

    async def add_fault(request: Request) -> Response:
        try:
            body = await _json_body(request)
        except ValueError as exc:
            return _error(400, str(exc))
        if not isinstance(body, dict):
            return _error(400, "give one fault rule as a JSON object")
        try:
            [rule] = add_faults([body], simulator.device.faults)
        except ConfigurationError as exc:
            return _error(422, str(exc))
        return JSONResponse(rule_json(rule, now()), status_code=201)

    async def delete_fault(request: Request) -> Response:
        wanted = request.path_params["rule_id"]
        for rule in simulator.device.faults.rules:
            if rule.id == wanted:
                simulator.device.faults.remove(rule)
                return Response(status_code=204)
        return _error(404, f"no fault rule {wanted}")

    async def clear_faults(request: Request) -> Response:
        simulator.device.faults.clear()
        return Response(status_code=204)

    async def log_lines(request: Request) -> Response:
        try:
            since = int(request.query_params.get("since", 0))
        except ValueError:
            return _error(400, "since is an integer")
        lines = [line for line in simulator.log_buffer.lines if line["seq"] > since]
        return JSONResponse({"lines": lines})

    def unit_data(request: Request) -> SimulatorData:
        """The device ``?unit=`` names (the selected one without it); LookupError, ValueError."""
        unit = request.query_params.get("unit")
        try:
            return simulator.unit_data(None if unit is None else int(unit))
        except ValueError:
            raise ValueError(f"unit={unit!r}: give an integer") from None

    def cell_json(address: int, data: SimulatorData) -> dict[str, Any]:
        cell = data.cells[address]
        return {
            "address": address,
            "type": cell.type.label,
            "value": cell.value,
            "writable": cell.writable,
            "action": cell.action,
            "parameters": None if cell.parameters is None else dict(cell.parameters),
            "reads": cell.count_read,
            "writes": cell.count_write,
        }

    def typed_query(request: Request) -> tuple[str | None, str | None, int | None]:
        query = request.query_params
        kind = query.get("type")
        order = query.get("word_order")  # None: the device's
        length = query.get("length")
        if order not in (None, "big", "little"):
            raise ValueError(f"word_order={order!r}; valid: big, little")
        if kind is not None and kind not in VALUE_TYPES:
            raise ValueError(f"type={kind!r}; valid: {', '.join(VALUE_TYPES)}")
        return kind, order, None if length is None else int(length)

    async def cells(request: Request) -> Response:
        try:
            data = unit_data(request)
        except ValueError as exc:
            return _error(400, str(exc))
        except LookupError as exc:
            return _error(404, str(exc.args[0]))
        try:
            first = int(request.query_params.get("start", 0))
            count = int(request.query_params.get("count", 100))
        except ValueError:
            return _error(400, "start and count are integers")
        if first < 0 or count < 1 or first >= len(data.cells):
            return _error(
                400, f"start={first}, count={count}; the device has {len(data.cells)} cells"
            )
        last = min(first + count, len(data.cells))
        return JSONResponse({"cells": [cell_json(a, data) for a in range(first, last)]})

    async def read_register(request: Request) -> Response:
        address = request.path_params["address"]
        try:
            data = unit_data(request)
            kind, order, length = typed_query(request)
            value = data.get(address, kind, word_order=order, length=length)  # type: ignore[arg-type]
        except ValueError as exc:
            return _error(400, str(exc))
        except LookupError as exc:
            return _error(404, str(exc.args[0]))
        if isinstance(value, list):
            value = [bool(v) for v in value]
        return JSONResponse(
            {"address": address, "type": kind or data.cells[address].type.label, "value": value}
        )

    async def write_register(request: Request) -> Response:
        address = request.path_params["address"]
        try:
            data = unit_data(request)
            kind, order, length = typed_query(request)
            body = await _json_body(request)
            if not isinstance(body, dict) or "value" not in body:
                raise ValueError('give {"value": ...} as a JSON object')
            kind = body.get("type", kind)
            order = body.get("word_order", order)
            data.set(address, body["value"], kind, word_order=order, length=length)
        except ValueError as exc:
            return _error(400, str(exc))
        except TypeError as exc:
            return _error(400, str(exc))
        except LookupError as exc:
            return _error(404, str(exc.args[0]))
        return await read_register(request)

    async def reset(request: Request) -> Response:
        if "unit" not in request.query_params:
            for data in simulator.units.values():  # every unit
                data.reset()
            return Response(status_code=204)
        try:
            unit_data(request).reset()
        except ValueError as exc:
            return _error(400, str(exc))
        except LookupError as exc:
            return _error(404, str(exc.args[0]))
        return Response(status_code=204)

    async def config(request: Request) -> Response:
        return JSONResponse(
            config_document(
                simulator.server_config,
                simulator.device_config,
                simulator.config.faults,
                config=simulator.config,
                unit=simulator.unit,
            )
        )

    async def export(request: Request) -> Response:
        return JSONResponse(
            export_document(
                simulator.server_config,
                simulator.device_config,
                simulator.data,
                units=simulator.units if simulator.unit is not None else None,
                unit=simulator.unit,
                generators=simulator.config.generators,
                on_write=simulator.config.on_write,
            ),
            headers={"content-disposition": 'attachment; filename="simulator.json"'},
        )

    async def restart(request: Request) -> Response:
        if await request.body():
            try:
                await _json_body(request)
            except ValueError as exc:
                return _error(400, str(exc))
        try:
            await simulator.restart()
        except ConfigurationError as exc:
            return _error(422, f"the configuration does not load; nothing changed: {exc}")
        except RuntimeError as exc:
            return _error(409, str(exc))
        except OSError as exc:
            return _error(503, f"the Modbus listener could not bind again: {exc}")
        return await status(request)

    async def listener(request: Request) -> Response:
        try:
            body = await _json_body(request)
        except ValueError as exc:
            return _error(400, str(exc))
        if not isinstance(body, dict) or set(body) != {"listening"}:
            return _error(400, 'give {"listening": true} or {"listening": false}')
        wanted = body["listening"]
        if not isinstance(wanted, bool):
            return _error(400, f"listening: {wanted!r} is not true or false")
        try:
            if wanted:
                await simulator.start_listener()
            else:
                await simulator.stop_listener()
        except RuntimeError as exc:
            return _error(409, str(exc))
        except OSError as exc:
            return _error(503, f"the Modbus listener could not bind again: {exc}")
        return await status(request)

    async def scenario(request: Request) -> Response:
        start = simulator.scenario_started_at
        done = simulator.scenario_done
        steps = [
            {**step, "index": index, "done": index in done, "ran_at": done.get(index)}
            for index, step in enumerate(simulator.config.scenario)
        ]
        elapsed = None if start is None else round(trio.current_time() - start, 3)
        return JSONResponse(
            {"elapsed": elapsed, "requests": simulator.device.requests, "steps": steps}
        )

    def streaming(events: AsyncIterator[str]) -> StreamingResponse:
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            # the connection closes with the stream (it lets a stopping server end at once)
            headers={
                "cache-control": "no-cache",
                "x-accel-buffering": "no",
                "connection": "close",
            },
        )

    async def tick() -> bool:
        """Wait a little; False once the simulator is stopping."""
        stopping = simulator.stopping
        if stopping is None or stopping.is_set():
            return False
        with trio.move_on_after(STREAM_TICK):
            await stopping.wait()
        return not stopping.is_set()

    def event_stream(
        request: Request,
        latest: int,
        kind: str,
        fresh: Callable[[int], Iterator[tuple[int, Any]]],
    ) -> Response:
        """Server-sent events of ``kind``: what ``fresh(last)`` gives after the last sent.

        ``fresh`` yields (sequence number, payload) in order, from the first after ``last``;
        it may stop early (the rest comes on a later tick).
        """
        try:
            last, limit = stream_window(request, latest)
        except ValueError as exc:
            return _error(400, str(exc))

        async def events() -> AsyncIterator[str]:
            nonlocal last, limit
            yield "retry: 1000\n\n"
            quiet = now()
            while limit != 0 and await tick():
                for seq, payload in fresh(last):
                    last = seq
                    quiet = now()
                    yield event(seq, kind, payload)
                    if limit is not None:
                        limit -= 1
                        if limit == 0:
                            break
                if now() - quiet >= STREAM_KEEPALIVE:
                    quiet = now()
                    yield ": keep-alive\n\n"

        return streaming(events())

    async def calls_stream(request: Request) -> Response:
        recorder = simulator.device.recorder

        def fresh(last: int) -> Iterator[tuple[int, Any]]:
            start = simulator.started_at or 0.0
            for record in simulator.device.recorder:
                if record.seq <= last:
                    continue
                settled = record.raw_out is not None or record.delivered
                if not settled and now() - record.time < STREAM_SETTLE:
                    return  # in order: the next calls wait for this one
                yield record.seq, record_json(record, start)

        return event_stream(request, recorder[-1].seq if len(recorder) else 0, "call", fresh)

    async def log_stream(request: Request) -> Response:
        def fresh(last: int) -> Iterator[tuple[int, Any]]:
            for line in list(simulator.log_buffer.lines):
                if line["seq"] > last:
                    yield line["seq"], line

        return event_stream(request, simulator.log_buffer.count, "log", fresh)

    async def openapi(request: Request) -> Response:
        from ._openapi import openapi_document

        return JSONResponse(openapi_document())

    routes = [
        Route("/api/v1/cells", guarded(cells), methods=["GET"]),
        Route("/api/v1/registers/{address:int}", guarded(read_register), methods=["GET"]),
        Route("/api/v1/registers/{address:int}", guarded(write_register), methods=["PUT"]),
        Route("/api/v1/reset", guarded(reset), methods=["POST"]),
        Route("/api/v1/status", guarded(status), methods=["GET"]),
        Route("/api/v1/calls", guarded(calls), methods=["GET"]),
        Route("/api/v1/calls", guarded(clear_calls), methods=["DELETE"]),
        Route("/api/v1/faults", guarded(faults), methods=["GET"]),
        Route("/api/v1/faults", guarded(add_fault), methods=["POST"]),
        Route("/api/v1/faults", guarded(clear_faults), methods=["DELETE"]),
        Route("/api/v1/faults/{rule_id:int}", guarded(delete_fault), methods=["DELETE"]),
        Route("/api/v1/log", guarded(log_lines), methods=["GET"]),
        Route("/api/v1/calls/stream", guarded(calls_stream), methods=["GET"]),
        Route("/api/v1/log/stream", guarded(log_stream), methods=["GET"]),
        Route("/api/v1/config", guarded(config), methods=["GET"]),
        Route("/api/v1/export", guarded(export), methods=["GET"]),
        Route("/api/v1/restart", guarded(restart), methods=["POST"]),
        Route("/api/v1/listener", guarded(listener), methods=["POST"]),
        Route("/api/v1/scenario", guarded(scenario), methods=["GET"]),
        Route("/api/v1/openapi.json", guarded(openapi), methods=["GET"]),
        *compat_routes(simulator, token),
        *web_routes(simulator, token),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])


def _address(address: Any) -> Any:
    return list(address) if isinstance(address, tuple) else address


def _touches(record: RequestRecord, address: int) -> bool:
    from trio_modbus.testing._recorder import overlaps

    return overlaps(record.request, address)
