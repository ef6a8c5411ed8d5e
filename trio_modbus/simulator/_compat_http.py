"""pymodbus's simulator endpoints: ``POST /restapi/<page>`` (JSON) and ``GET /api/<page>`` (HTML).

The pages are pymodbus's four: ``registers``, ``calls``, ``log`` and ``server``. The JSON
answers carry pymodbus 3.12.1's keys, with its values where the meaning is the same
(``tests/simulator/golden/`` holds pymodbus's own answers, and
``tests/simulator/test_http_compat.py`` lists the differences). What pymodbus only shows, this
one does:

* "Simulate" (response type normal with delay or split, error, empty, junk; change rate;
  clear after) becomes a fault rule of ``simulator.device.faults``: it acts on the next
  matching requests and is removed once spent (pymodbus 3.12.1 stores the form and applies
  nothing);
* "Monitor" lists the calls the device receives from then on (pymodbus's list stays empty);
* ``/restapi/log`` returns the log and ``/restapi/server`` the status, with "Restart"
  (pymodbus's are stubs answering an error).

Bad input gets a 4xx status with pymodbus's error shape, ``{"result": "error", "error":
...}`` (pymodbus answers 200, or 500 for a body that is not JSON), and changes nothing.
Everything put in a page is HTML-escaped.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from trio_modbus._errors import ConfigurationError
from trio_modbus.pdu import FunctionCode

from ._config import BUILTIN_ACTIONS, CellType

if TYPE_CHECKING:
    from trio_modbus.testing import RequestRecord

    from ._datastore import SimulatorData
    from ._server import ModbusSimulatorServer

__all__ = ["CompatState", "compat_routes"]

MAX_FILTER = 1000  # pymodbus's: registers a filter holds, calls a monitor keeps
PAGES = ("registers", "calls", "log", "server")

RESPONSE_INACTIVE = -1
RESPONSE_NORMAL = 0
RESPONSE_ERROR = 1
RESPONSE_EMPTY = 2
RESPONSE_JUNK = 3
JUNK_DEFAULT = 10  # pymodbus's default junk length

ERROR_CODES = (
    (1, "ILLEGAL_FUNCTION"),
    (2, "ILLEGAL_ADDRESS"),
    (3, "ILLEGAL_VALUE"),
    (4, "DEVICE_FAILURE"),
    (5, "ACKNOWLEDGE"),
    (6, "DEVICE_BUSY"),
    (7, "MEMORY_PARITY_ERROR"),
    (10, "GATEWAY_PATH_UNAVAILABLE"),  # pymodbus: "GATEWAY_PATH_UNAVIABLE"
    (11, "GATEWAY_NO_RESPONSE"),
)
# pymodbus's order (DecodePDU(True).list_function_codes()).
FUNCTION_CODES = (1, 2, 5, 15, 8, 20, 21, 24, 43, 7, 11, 12, 17, 3, 4, 16, 6, 23, 22)
# pymodbus's register_types, in its order; int16 and float64 are added when the device has some.
REGISTER_TYPES = ("bits", "uint16", "uint32", "float32", "string", "next", "invalid")


class BadInput(ValueError):
    """A request this API refuses (400, nothing changed)."""


@dataclasses.dataclass
class Monitor:
    """pymodbus's ``CallTypeMonitor``, plus where monitoring started."""

    active: bool = False
    range_start: int = -1
    range_stop: int = -1
    function: int = -1
    hex: bool = False
    decode: bool = False
    since: int = 0


@dataclasses.dataclass
class Simulate:
    """pymodbus's ``CallTypeResponse``: the "Simulate" form as last submitted."""

    active: int = RESPONSE_INACTIVE
    split: int = 0
    delay: int = 0
    junk_len: int = JUNK_DEFAULT
    error_response: int = 0
    change_rate: int = 0
    clear_after: int = 1


@dataclasses.dataclass
class CompatState:
    """What pymodbus's pages remember between requests."""

    register_filter: list[int] = dataclasses.field(default_factory=list)
    monitor: Monitor = dataclasses.field(default_factory=Monitor)
    response: Simulate = dataclasses.field(default_factory=Simulate)
    rule_ids: list[int] = dataclasses.field(default_factory=list)
    refresh_rate: int = 0


def _int(params: Mapping[str, Any], key: str, default: int) -> int:
    """``params[key]`` as an int (as pymodbus reads it: ``int()``), ``default`` when empty."""
    value = params.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise BadInput(f"{key}={value!r} is not an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadInput(f"{key}={value!r} is not an integer") from None


def _checked(params: Mapping[str, Any], key: str) -> bool:
    """A checkbox: present and not empty/false (pymodbus: present)."""
    return key in params and params[key] not in ("", None, False, "off", "false", "0")


# -- the registers page -----------------------------------------------------------------------


def action_ids(simulator: ModbusSimulatorServer) -> dict[str, int]:
    """The ids of the actions, as pymodbus's ``action_name_to_id``.

    Built-ins, then custom actions, and ``"null"`` (0) for none.
    """
    names = list(BUILTIN_ACTIONS)
    names += [n for n in simulator.config.custom_actions if n not in names]
    result = {name: number for number, name in enumerate(names, 1)}
    result["null"] = 0
    return result


def type_ids(data: SimulatorData) -> dict[str, int]:
    """The ids of the cell types, as pymodbus's ``registerType_name_to_id``.

    int16 and float64 (not pymodbus's) are listed when the device has some.
    """
    result = {name: int(CellType[name.upper()]) for name in REGISTER_TYPES}
    present = {cell.type for cell in data.cells}
    for extra in (CellType.INT16, CellType.FLOAT64):
        if extra in present:
            result[extra.label] = int(extra)
    return result


def text_register(data: SimulatorData, address: int) -> dict[str, str]:
    """One register as pymodbus's ``get_text_register`` shows it (every value a string)."""
    cell = data.cells[address]
    span = data.value_span(address) if cell.type is not CellType.NEXT else 1
    span = min(span, len(data.cells) - address)
    kind = cell.type
    if kind is CellType.BITS:
        value = hex(cell.value)
    elif kind is CellType.STRING:
        raw = b"".join(c.value.to_bytes(2, "big") for c in data.cells[address : address + span])
        value = raw.decode("utf-8", "ignore")
    elif kind in (CellType.INT16, CellType.UINT32, CellType.FLOAT32, CellType.FLOAT64):
        try:
            value = str(data.get(address, kind.label))
        except IndexError:
            value = str(cell.value)
    else:  # invalid, uint16, next
        value = str(cell.value)
    action = "none" if cell.action is None else cell.action
    if cell.action is not None and cell.parameters:
        action = f"{action}({dict(cell.parameters)})"
    return {
        "index": f"{address}-{address + span - 1}" if span > 1 else str(address),
        "type": kind.label,
        "access": str(cell.writable),
        "action": action,
        "value": value,
        "count_read": str(cell.count_read),
        "count_write": str(cell.count_write),
    }


def _register_address(data: SimulatorData, params: Mapping[str, Any], key: str) -> int:
    address = _int(params, key, -1)
    if not 0 <= address < len(data.cells):
        raise BadInput(f"{key}={params.get(key)!r}: the device has cells 0..{len(data.cells) - 1}")
    return address


def action_set(simulator: ModbusSimulatorServer, params: Mapping[str, Any]) -> None:
    """The "Set" button: a register's raw value and/or its write permission."""
    data = simulator.data
    if params.get("register") in (None, ""):
        raise BadInput("Missing register")
    address = _register_address(data, params, "register")
    value = params.get("value")
    new = None
    if value not in (None, ""):
        new = _int(params, "value", 0)
        if not 0 <= new <= 0xFFFF:
            raise BadInput(f"value={value!r}: a register holds 0..65535")
    if new is not None:
        data.cells[address].value = new
    if _checked(params, "writeable"):
        data.cells[address].writable = True


def action_add(
    simulator: ModbusSimulatorServer, state: CompatState, params: Mapping[str, Any]
) -> str | None:
    """The "Add" button: registers matching range, type, action and writeable join the filter."""
    data = simulator.data
    start = _int(params, "range_start", -1)
    stop = _int(params, "range_stop", start)
    kind = _int(params, "type", -1)
    action = _int(params, "action", -1)
    writeable = _checked(params, "writeable")
    names = {number: name for name, number in action_ids(simulator).items()}
    if action not in (-1, *names):
        raise BadInput(f"action={action}: valid: -1 (any), {', '.join(map(str, names))}")
    count = len(data.cells)
    steps = range(max(start, 0), min(stop, count - 1) + 1) if start != -1 else range(count)
    for address in steps:
        cell = data.cells[address]
        cell_action = 0 if cell.action is None else action_ids(simulator).get(cell.action, 0)
        if (
            (writeable and not cell.writable)
            or kind not in (-1, int(cell.type))
            or action not in (-1, cell_action)
            or address in state.register_filter
        ):
            continue
        state.register_filter.append(address)
        if len(state.register_filter) >= MAX_FILTER:
            state.register_filter.sort()
            return f"Max. filter size {MAX_FILTER} exceeded!"
    state.register_filter.sort()
    return None


def registers_json(
    simulator: ModbusSimulatorServer, state: CompatState, params: Mapping[str, Any]
) -> dict[str, Any]:
    """``POST /restapi/registers``: "Set", then the rows of ``range_start..range_stop``."""
    if "submit" not in params:
        raise BadInput("missing 'submit'")
    data = simulator.data
    try:
        start = _int(params, "range_start", 0)
        stop = _int(params, "range_stop", start)
    except BadInput:
        raise BadInput("Invalid range parameters") from None
    if not 0 <= start <= stop < len(data.cells):
        raise BadInput(
            f"Invalid range parameters: {start}..{stop}; the device has cells"
            f" 0..{len(data.cells) - 1}"
        )
    if params["submit"] == "Set":
        action_set(simulator, params)
    return {
        "result": "ok",
        "footer": "Operation completed successfully",
        "register_types": type_ids(data),
        "register_actions": action_ids(simulator),
        "register_rows": [text_register(data, i) for i in range(start, stop + 1)],
    }


# -- the calls page ---------------------------------------------------------------------------


def simulate_rule(response: Simulate) -> dict[str, Any] | None:
    """The fault rule (``add_faults`` fields) the "Simulate" form asks for; None: none."""
    spec: dict[str, Any]
    if response.active == RESPONSE_NORMAL:
        if response.delay > 0 and response.split > 0:
            raise BadInput("delay and split response cannot both apply: a request gets one fault")
        if response.delay > 0:
            spec = {"action": "delay", "seconds": response.delay}
        elif response.split > 0:
            spec = {"action": "split", "gap": response.split}
        else:
            return None
    elif response.active == RESPONSE_ERROR:
        if not 1 <= response.error_response <= 255:
            raise BadInput(
                f"response_error={response.error_response}: give an exception code,"
                f" {', '.join(str(c) for c, _ in ERROR_CODES)}"
            )
        spec = {"action": "exception", "code": response.error_response}
    elif response.active == RESPONSE_EMPTY:
        spec = {"action": "no_reply"}
    elif response.active == RESPONSE_JUNK:
        spec = {"action": "garbage", "size": response.junk_len or JUNK_DEFAULT}
    else:
        raise BadInput(
            f"response_type={response.active}: valid: 0 (normal), 1 (error), 2 (empty), 3 (junk)"
        )
    if response.clear_after > 0:
        spec["times"] = response.clear_after
    if 0 < response.change_rate < 100:
        spec["probability"] = response.change_rate / 100
    return spec


def action_simulate(
    simulator: ModbusSimulatorServer, state: CompatState, params: Mapping[str, Any]
) -> None:
    """The "Simulate" button: replace the previous simulated response with a new fault rule."""
    from trio_modbus.testing import add_faults

    if "response_type" not in params:
        raise BadInput("missing 'response_type'")
    response = Simulate(
        active=_int(params, "response_type", RESPONSE_INACTIVE),
        split=(_int(params, "split_delay", 1) if _checked(params, "response_split") else 0),
        change_rate=(_int(params, "response_cr_pct", 0) if _checked(params, "response_cr") else 0),
        delay=_int(params, "response_delay", 0),
        junk_len=_int(params, "response_junk_datalen", 0),
        error_response=_int(params, "response_error", 0),
        clear_after=_int(params, "response_clear_after", 1),
    )
    for key in ("split", "delay", "junk_len", "clear_after"):
        if getattr(response, key) < 0:
            raise BadInput(f"{key}={getattr(response, key)}: must be >= 0")
    if not 0 <= response.change_rate <= 100:
        raise BadInput(f"response_cr_pct={response.change_rate}: give a percentage, 0..100")
    spec = simulate_rule(response)
    faults = simulator.device.faults
    rules = []
    if spec is not None:
        try:
            rules = add_faults([spec], faults)
        except ConfigurationError as exc:
            raise BadInput(str(exc)) from None
    _remove_simulated(simulator, state)
    state.rule_ids = [rule.id for rule in rules]
    state.response = response


def _remove_simulated(simulator: ModbusSimulatorServer, state: CompatState) -> None:
    faults = simulator.device.faults
    for rule in list(faults.rules):
        if rule.id in state.rule_ids:
            faults.remove(rule)
    state.rule_ids = []


def action_reset(simulator: ModbusSimulatorServer, state: CompatState) -> None:
    """The "Reset" button: no simulated response any more."""
    _remove_simulated(simulator, state)
    state.response = Simulate()


def action_monitor(
    simulator: ModbusSimulatorServer, state: CompatState, params: Mapping[str, Any]
) -> None:
    """The "Monitor" button: list the calls from now on, of one function and a register range."""
    start = _int(params, "range_start", -1)
    stop = _int(params, "range_stop", start)
    function = _int(params, "function", -1)
    if function not in (-1, *FUNCTION_CODES):
        raise BadInput(
            f"function={function}: valid: -1 (any), {', '.join(map(str, FUNCTION_CODES))}"
        )
    recorder = simulator.device.recorder
    state.monitor = Monitor(
        active=True,
        range_start=start,
        range_stop=stop,
        function=function,
        hex=_checked(params, "show_hex"),
        decode=_checked(params, "show_decode"),
        since=recorder[-1].seq if len(recorder) else 0,
    )


def simulation_active(simulator: ModbusSimulatorServer, state: CompatState) -> bool:
    """Whether a simulated response is still in force (its rule not spent)."""
    live = {rule.id for rule in simulator.device.faults.rules}
    return any(rule_id in live for rule_id in state.rule_ids)


def call_rows(simulator: ModbusSimulatorServer, state: CompatState) -> list[dict[str, Any]]:
    """The monitored calls, newest first: a request row, then its response row."""
    from trio_modbus.testing._recorder import overlaps, spans

    monitor = state.monitor
    if not monitor.active:
        return []
    selected: list[RequestRecord] = []
    for record in simulator.device.recorder:
        if record.seq <= monitor.since:
            continue
        if monitor.function != -1 and record.function_code != monitor.function:
            continue
        if monitor.range_start != -1 and not overlaps(
            record.request,
            range(monitor.range_start, max(monitor.range_stop, monitor.range_start) + 1),
        ):
            continue
        selected.append(record)
    rows: list[dict[str, Any]] = []
    for record in reversed(selected[-MAX_FILTER:]):
        span = spans(record.request)
        address, count = (span[0][1], span[0][2]) if span else (-1, -1)
        shown_in = []
        shown_out = []
        if monitor.hex or not monitor.decode:
            shown_in.append(record.raw_in.hex(" "))
            shown_out.append("" if record.raw_out is None else record.raw_out.hex(" "))
        if monitor.decode:
            shown_in.append(record.summary())
            shown_out.append(record.reply_summary())
        code = record.function_code
        if record.exception_code is not None:
            code |= 0x80
        rows.append(
            {
                "call": True,
                "fc": record.function_code,
                "address": address,
                "count": count,
                "data": " | ".join(shown_in),
            }
        )
        rows.append(
            {
                "call": False,
                "fc": code,
                "address": address,
                "count": count,
                "data": " | ".join(shown_out),
            }
        )
    return rows


def calls_json(
    simulator: ModbusSimulatorServer,
    state: CompatState,
    params: Mapping[str, Any],
    *,
    html_form: bool = False,
) -> dict[str, Any]:
    """``POST /restapi/calls``: "Simulate", "Reset", "Monitor", "Stop", "Add", then the state."""
    if "submit" not in params and not html_form:
        raise BadInput("missing 'submit'")
    submit = params.get("submit")
    foot = None
    if submit == "Simulate":
        action_simulate(simulator, state, params)
    elif submit == "Reset":
        action_reset(simulator, state)
    elif submit == "Monitor":
        action_monitor(simulator, state, params)
    elif submit == "Stop":
        state.monitor = Monitor()
        foot = "Stopped monitoring"
    elif submit == "Add":  # pymodbus's calls form shares the registers filter
        foot = action_add(simulator, state, params)
    monitor, response = state.monitor, state.response
    return {
        "simulation_action": "ACTIVE" if simulation_active(simulator, state) else "",
        "range_start": None if monitor.range_start == -1 else monitor.range_start,
        "range_stop": None if monitor.range_stop == -1 else monitor.range_stop,
        "function_codes": [
            {
                "value": code,
                "text": FunctionCode(code).name.lower(),
                "selected": code == monitor.function,
            }
            for code in FUNCTION_CODES
        ],
        "function_show_hex_checked": monitor.hex,
        "function_show_decoded_checked": monitor.decode,
        "function_response_normal_checked": response.active == RESPONSE_NORMAL,
        "function_response_error_checked": response.active == RESPONSE_ERROR,
        "function_response_empty_checked": response.active == RESPONSE_EMPTY,
        "function_response_junk_checked": response.active == RESPONSE_JUNK,
        "function_response_split_checked": response.split > 0,
        "function_response_split_delay": response.split,
        "function_response_cr_checked": response.change_rate > 0,
        "function_response_cr_pct": response.change_rate,
        "function_response_delay": response.delay,
        "function_response_junk": response.junk_len,
        "function_error": [
            {"value": code, "text": text, "selected": code == response.error_response}
            for code, text in ERROR_CODES
        ],
        "function_response_clear_after": response.clear_after,
        "call_rows": call_rows(simulator, state),
        "foot": foot or ("Monitoring active" if monitor.active else "not active"),
        "result": "ok",
        "fault_rules": list(state.rule_ids),
    }


# -- the log and server pages -----------------------------------------------------------------


def log_json(simulator: ModbusSimulatorServer, params: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /restapi/log``: the log lines kept (after ``since``); "Clear" forgets them."""
    since = _int(params, "since", 0)
    buffer = simulator.log_buffer
    if params.get("submit") == "Clear":
        buffer.lines.clear()
    lines = [line for line in buffer.lines if line["seq"] > since]
    return {"result": "ok", "log_rows": lines, "footer": f"{len(lines)} log entries"}


async def server_json(
    simulator: ModbusSimulatorServer, params: Mapping[str, Any]
) -> dict[str, Any]:
    """``POST /restapi/server``: the status; "Restart" reloads the configuration first."""
    from ._http import status_json

    footer = "running"
    if params.get("submit") == "Restart":
        try:
            await simulator.restart()
        except ConfigurationError as exc:
            raise BadInput(f"the configuration does not load; nothing changed: {exc}") from None
        footer = "restarted"
    return {"result": "ok", "footer": footer, **status_json(simulator)}


# -- HTML -------------------------------------------------------------------------------------

_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Modbus simulator</title>
  {refresh}
</head>
<body>
  <h1><center>{title}</center></h1>
"""
_TAIL = "</body>\n</html>\n"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(headers: list[str], rows: list[list[Any]], foot: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return (
        f'  <table width="80%" class="listbox">\n    <thead><tr>{head}</tr></thead>\n'
        f"    <tbody>{body}</tbody>\n"
        f'    <tfoot><tr><th colspan="{len(headers)}">{_e(foot)}</th></tr></tfoot>\n  </table>\n'
    )


def _options(options: list[tuple[Any, Any, bool]]) -> str:
    return "".join(
        f'<option value="{_e(v)}"{" selected" if chosen else ""}>{_e(t)}</option>'
        for v, t, chosen in options
    )


def _checked_attr(flag: bool) -> str:
    return " checked" if flag else ""


def registers_page(
    simulator: ModbusSimulatorServer, state: CompatState, result: str, foot: str | None
) -> str:
    """The registers page: the filtered registers, the filter form and the set form."""
    data = simulator.data
    rows = []
    for address in state.register_filter:
        if address >= len(data.cells) or data.cells[address].type is CellType.NEXT:
            continue
        text = text_register(data, address)
        rows.append(
            [
                text[k]
                for k in (
                    "index",
                    "type",
                    "access",
                    "action",
                    "value",
                    "count_read",
                    "count_write",
                )
            ]
        )
    if foot is None:
        foot = (
            f"{len(state.register_filter)} register(s) monitored"
            if state.register_filter
            else "Nothing selected"
        )
    types = _options(
        [(-1, "Any", True), *((n, name, False) for name, n in type_ids(data).items())]
    )
    actions = _options(
        [(-1, "Any", True), *((n, name, False) for name, n in action_ids(simulator).items())]
    )
    return (
        _table(["Register", "Type", "Write", "Action", "Value", "# read", "# write"], rows, foot)
        + f"""  <fieldset class="tools_fieldset"><legend>Filter registers</legend>
    <form action="/api/registers" method="get">
      <label>Start/end</label>
      <input type="number" name="range_start" /> <input type="number" name="range_stop" />
      <label>Type</label> <select name="type">{types}</select>
      <label>Action</label> <select name="action">{actions}</select>
      <label>Writeable</label> <input type="checkbox" name="writeable" />
      <input type="submit" value="Add" name="submit" />
      <input type="submit" value="Clear" name="submit" />
    </form>
  </fieldset>
  <fieldset class="tools_fieldset"><legend>Set</legend>
    <form action="/api/registers" method="get">
      <label>Register</label> <input type="number" name="register" />
      <label>Value</label> <input type="text" name="value" />
      <input type="submit" value="Set" name="submit" />
    </form>
  </fieldset>
  <p>Result of last command: {_e(result)}</p>
"""
    )


def calls_page(state_json: dict[str, Any]) -> str:
    """The calls page: the monitored calls, the monitor form and the simulate form."""
    rows = [
        [f"{'call' if r['call'] else 'response'} - {r['fc']}", r["address"], r["count"], r["data"]]
        for r in state_json["call_rows"]
    ]
    functions = _options(
        [(-1, "Any", not any(f["selected"] for f in state_json["function_codes"]))]
        + [(f["value"], f["text"], f["selected"]) for f in state_json["function_codes"]]
    )
    errors = _options(
        [(f["value"], f["text"], f["selected"]) for f in state_json["function_error"]]
    )
    j = state_json

    def number(value: Any) -> str:
        return "" if value is None else _e(value)

    def radio(value: int, key: str, label: str) -> str:
        flag = _checked_attr(j[f"function_response_{key}_checked"])
        return f'<input type="radio" name="response_type" value="{value}"{flag}>{label}'

    def box(name: str, key: str) -> str:
        return f'<input type="checkbox" name="{name}"{_checked_attr(j[key])} />'

    def field(name: str, key: str) -> str:
        return f'<input type="number" name="{name}" value="{number(j[key])}" />'

    return (
        _table(["Call/Response", "Address", "Count", "Data"], rows, j["foot"])
        + f"""  <fieldset class="tools_fieldset"><legend>Monitor</legend>
    <form action="/api/calls" method="get">
      <label>Register range</label>
      {field("range_start", "range_start")} {field("range_stop", "range_stop")}
      <label>Function</label> <select name="function">{functions}</select>
      <label>Show as</label>
      {box("show_hex", "function_show_hex_checked")}Hex
      {box("show_decode", "function_show_decoded_checked")}Decoded
      <input type="submit" value="Monitor" name="submit" />
      <input type="submit" value="Stop" name="submit" />
    </form>
  </fieldset>
  <fieldset class="tools_fieldset"><legend>Simulate <b>{_e(j["simulation_action"])}</b></legend>
    <form action="/api/calls" method="get">
      {radio(2, "empty", "Empty")}
      {radio(0, "normal", "Normal")}
      <label>split response</label> {box("response_split", "function_response_split_checked")}
      {field("split_delay", "function_response_split_delay")}seconds delay
      <label>Change rate</label> {box("response_cr", "function_response_cr_checked")}
      {field("response_cr_pct", "function_response_cr_pct")}%
      <label>Delay response</label>
      {field("response_delay", "function_response_delay")}seconds
      {radio(1, "error", "Error")} <select name="response_error">{errors}</select>
      {radio(3, "junk", "Junk")} <label>Datalength</label>
      {field("response_junk_datalen", "function_response_junk")}bytes
      <label>Clear after</label>
      {field("response_clear_after", "function_response_clear_after")}requests
      <input type="submit" value="Simulate" name="submit" />
      <input type="submit" value="Reset" name="submit" />
    </form>
  </fieldset>
  <p>Result of last command: {_e(j["result"])}</p>
"""
    )


def log_page(state_json: dict[str, Any]) -> str:
    """The log page: the log lines and the log form."""
    rows = [
        [f"{line['level']} {line['logger']}: {line['message']}"] for line in state_json["log_rows"]
    ]
    return (
        _table(["Log entries"], rows, state_json["footer"])
        + """  <fieldset class="tools_fieldset"><legend>Log</legend>
    <form action="/api/log" method="get">
      <input type="submit" value="Download" name="submit" />
      <input type="submit" value="Monitor" name="submit" />
      <input type="submit" value="Clear" name="submit" />
    </form>
  </fieldset>
"""
    )


def server_page(state_json: dict[str, Any]) -> str:
    """The server page: uptime, addresses and the restart form."""
    modbus = state_json["modbus"]
    return f"""  <fieldset class="tools_fieldset"><legend>Status</legend>
    Uptime: {_e(state_json["uptime"])} s<br>
    Modbus: {_e(modbus["comm"])} {_e(modbus["address"])}<br>
    Calls: {_e(state_json["calls"])}, fault rules: {_e(state_json["faults"])}<br>
    {_e(state_json["footer"])}
  </fieldset>
  <fieldset class="tools_fieldset"><legend>Server</legend>
    <form action="/api/server" method="get">
      <input type="submit" value="Restart" name="submit" />
    </form>
  </fieldset>
"""


_INDEX = """  <ul>
    <li><a href="/api/registers">Registers</a></li>
    <li><a href="/api/calls">Calls</a></li>
    <li><a href="/api/log">Log</a></li>
    <li><a href="/api/server">Server</a></li>
    <li><a href="/api/v1/openapi.json">The JSON API (OpenAPI)</a></li>
  </ul>
"""

# -- routes -----------------------------------------------------------------------------------


def _compat_error(status: int, message: str) -> Response:
    return JSONResponse({"result": "error", "error": message}, status_code=status)


def compat_routes(simulator: ModbusSimulatorServer, token: str | None) -> list[Route]:
    """The routes of pymodbus's simulator, on a state of their own.

    Args:
        simulator: The simulator they show and steer.
        token: The bearer token every request needs, or None.

    Returns:
        ``POST /restapi/<page>``, ``GET /api/<page>`` and ``GET /``.
    """
    from ._http import _json_body, guard

    state = CompatState()

    async def rest(request: Request) -> Response:
        page = request.path_params["page"]
        try:
            params = await _json_body(request)
        except ValueError as exc:
            return _compat_error(400, str(exc))
        if not isinstance(params, dict):
            return _compat_error(400, "give the parameters as a JSON object")
        try:
            if page == "registers":
                result = registers_json(simulator, state, params)
            elif page == "calls":
                result = calls_json(simulator, state, params)
            elif page == "log":
                result = log_json(simulator, params)
            else:
                result = await server_json(simulator, params)
        except BadInput as exc:
            return _compat_error(400, str(exc))
        return JSONResponse(result)

    async def page(request: Request) -> Response:
        name = request.path_params["page"]
        params = dict(request.query_params)
        refresh = params.pop("refresh", None)
        result, foot = "ok", None
        try:
            if refresh is not None:
                state.refresh_rate = max(0, _int({"refresh": refresh}, "refresh", 0))
            submit = params.get("submit")
            if name == "registers":
                if submit == "Clear":
                    state.register_filter = []
                elif submit == "Add":
                    foot = action_add(simulator, state, params)
                elif submit == "Set":
                    action_set(simulator, params)
                body = registers_page(simulator, state, result, foot)
            elif name == "calls":
                body = calls_page(calls_json(simulator, state, params, html_form=True))
            elif name == "log":
                if submit == "Download":
                    text = "".join(
                        f"{line['time']:.3f} {line['level']} {line['logger']}: {line['message']}\n"
                        for line in simulator.log_buffer.lines
                    )
                    return PlainTextResponse(
                        text,
                        headers={"content-disposition": 'attachment; filename="simulator.log"'},
                    )
                body = log_page(log_json(simulator, params))
            else:
                body = server_page(await server_json(simulator, params))
        except BadInput as exc:
            body = f"  <p>Result of last command: {_e(exc)}</p>\n"
            return HTMLResponse(_page(name, state, body), status_code=400)
        return HTMLResponse(_page(name, state, body))

    async def index(request: Request) -> Response:
        return HTMLResponse(_page("Modbus simulator", state, _INDEX))

    async def page_guarded(request: Request) -> Response:
        changing = "submit" in request.query_params
        return await guard(page, token, state_changing=changing, error=_compat_error)(request)

    return [
        Route(
            "/restapi/{page:str}",
            _only(PAGES, guard(rest, token, state_changing=True, error=_compat_error)),
            methods=["POST"],
        ),
        Route("/api/{page:str}", _only(PAGES, page_guarded), methods=["GET"]),
        Route("/", guard(index, token, error=_compat_error), methods=["GET"]),
    ]


def _page(name: str, state: CompatState, body: str) -> str:
    refresh = (
        f'<meta http-equiv="refresh" content="{state.refresh_rate}">' if state.refresh_rate else ""
    )
    title = name.capitalize() if name in PAGES else name
    return _HEAD.format(refresh=refresh, title=_e(title)) + body + _TAIL


def _only(pages: tuple[str, ...], endpoint: Callable[[Request], Any]) -> Callable[[Request], Any]:
    async def check(request: Request) -> Response:
        if request.path_params["page"] not in pages:
            return _compat_error(
                404, f"no page {request.path_params['page']!r}; pages: {', '.join(pages)}"
            )
        response: Response = await endpoint(request)
        return response

    return check
