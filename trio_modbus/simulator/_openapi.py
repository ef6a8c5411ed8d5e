"""The OpenAPI 3.1 description of the simulator's ``/api/v1``, written by hand.

``tests/simulator/test_http_streams.py`` checks that it lists exactly the routes the
application has.
"""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]

_ERROR = {
    "description": "Refused; nothing changed",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}},
                "required": ["error"],
            }
        }
    },
}
_OBJECT = {"type": "object", "additionalProperties": True}
_EVENTS = {
    "description": (
        "Server-sent events, one JSON object each, `id:` its sequence number (resume with "
        "Last-Event-ID). The stream ends when the simulator stops."
    ),
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


def _query(name: str, kind: str, text: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": kind},
        "description": text,
    }


def _json(text: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": schema or _OBJECT}}}


def _operation(
    summary: str,
    responses: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {**responses, "401": _ERROR}}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return operation


_NO_CONTENT = {"description": "Done"}
_ADDRESS = {"name": "address", "in": "path", "required": True, "schema": {"type": "integer"}}
_TYPED = [
    _query("type", "string", "bits, uint16, int16, uint32, int32, float32, float64 or string"),
    _query("word_order", "string", "big (high word first) or little"),
    _query("length", "integer", "registers of a string"),
]
_UNIT = _query(
    "unit",
    "integer",
    "the unit id whose device to use (trio_modbus.units); without it, the selected device."
    " 404 when no device answers it",
)
_SINCE = _query("since", "integer", "only what comes after this sequence number")
_LIMIT = _query("limit", "integer", "end the stream after this many events")


def openapi_document() -> dict[str, Any]:
    """The OpenAPI description of ``/api/v1``.

    Returns:
        A new OpenAPI 3.1 document.
    """
    paths: dict[str, dict[str, Any]] = {
        "/api/v1/status": {
            "get": _operation("Uptime, addresses, units, statistics", {"200": _json("Status")})
        },
        "/api/v1/calls": {
            "get": _operation(
                "The call log, oldest first",
                {"200": _json("Calls and their total"), "400": _ERROR},
                parameters=[
                    _query("limit", "integer", "at most this many (the newest)"),
                    _SINCE,
                    _query("unit", "integer", "only this unit id"),
                    _query("function", "string", "only this function code (0x.. allowed)"),
                    _query("address", "integer", "only calls touching this address"),
                    _query("errors", "string", "1: only exceptions and undelivered replies"),
                ],
            ),
            "delete": _operation("Forget the call log", {"204": _NO_CONTENT}),
        },
        "/api/v1/calls/stream": {
            "get": _operation(
                "The calls as they complete",
                {"200": _EVENTS, "400": _ERROR},
                parameters=[_SINCE, _LIMIT],
            )
        },
        "/api/v1/faults": {
            "get": _operation("The fault rules", {"200": _json("Rules")}),
            "post": _operation(
                "Add a fault rule (the fields of a faults file's [[fault]] table)",
                {"201": _json("The rule"), "400": _ERROR, "422": _ERROR},
                body=_OBJECT,
            ),
            "delete": _operation("Remove every fault rule", {"204": _NO_CONTENT}),
        },
        "/api/v1/faults/{rule_id}": {
            "delete": _operation(
                "Remove one fault rule",
                {"204": _NO_CONTENT, "404": _ERROR},
                parameters=[
                    {
                        "name": "rule_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    }
                ],
            )
        },
        "/api/v1/log": {
            "get": _operation(
                "The log lines kept", {"200": _json("Lines"), "400": _ERROR}, parameters=[_SINCE]
            )
        },
        "/api/v1/log/stream": {
            "get": _operation(
                "The log as it is written",
                {"200": _EVENTS, "400": _ERROR},
                parameters=[_SINCE, _LIMIT],
            )
        },
        "/api/v1/cells": {
            "get": _operation(
                "Cells with type, value, permission, action and counters",
                {"200": _json("Cells"), "400": _ERROR, "404": _ERROR},
                parameters=[
                    _query("start", "integer", "first cell"),
                    _query("count", "integer", "cells"),
                    _UNIT,
                ],
            )
        },
        "/api/v1/registers/{address}": {
            "get": _operation(
                "A typed value",
                {"200": _json("The value"), "400": _ERROR, "404": _ERROR},
                parameters=[_ADDRESS, *_TYPED, _UNIT],
            ),
            "put": _operation(
                "Force a typed value (bypasses write permissions)",
                {"200": _json("The value"), "400": _ERROR, "404": _ERROR},
                parameters=[_ADDRESS, *_TYPED, _UNIT],
                body={
                    "type": "object",
                    "properties": {
                        "value": {},
                        "type": {"type": "string"},
                        "word_order": {"type": "string"},
                    },
                    "required": ["value"],
                },
            ),
        },
        "/api/v1/reset": {
            "post": _operation(
                "Restore every cell's initial value (of every unit, or of ?unit=)",
                {"204": _NO_CONTENT, "400": _ERROR, "404": _ERROR},
                parameters=[
                    _query(
                        "unit",
                        "integer",
                        "only this unit id's device; without it, every unit's."
                        " 404 when no device answers it",
                    )
                ],
            )
        },
        "/api/v1/config": {
            "get": _operation(
                "The effective configuration, as pymodbus simulator JSON: the selected server,"
                " every device a unit uses, and the trio_modbus key (without the token)",
                {"200": _json("Configuration")},
            )
        },
        "/api/v1/export": {
            "get": _operation(
                "The current state of every unit's device, as pymodbus simulator JSON that loads"
                " into the same units, cells and generators",
                {"200": _json("Configuration")},
            )
        },
        "/api/v1/restart": {
            "post": _operation(
                "Reload the configuration and rebind the Modbus listener",
                {
                    "200": _json("Status"),
                    "400": _ERROR,
                    "409": _ERROR,
                    "422": _ERROR,
                    "503": _ERROR,
                },
            )
        },
        "/api/v1/listener": {
            "post": _operation(
                "Close the Modbus listener (listening false: requests being answered get their"
                " replies, then every connection closes) or open it again at the same address",
                {"200": _json("Status"), "400": _ERROR, "409": _ERROR, "503": _ERROR},
                body={
                    "type": "object",
                    "properties": {"listening": {"type": "boolean"}},
                    "required": ["listening"],
                    "additionalProperties": False,
                },
            )
        },
        "/api/v1/scenario": {
            "get": _operation(
                "The trio_modbus.scenario timeline: each step with done and ran_at (seconds"
                " from the start), the seconds elapsed and the requests served",
                {"200": _json("Scenario")},
            )
        },
        "/api/v1/openapi.json": {
            "get": _operation("This description", {"200": _json("OpenAPI document")})
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "trio_modbus simulator API",
            "version": "1",
            "description": (
                "The simulator's native JSON API. With a token, every request needs "
                "Authorization: Bearer <token>. State-changing requests refuse form bodies "
                "and cross-origin browser requests."
            ),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"bearer": []}],
        "paths": paths,
    }
