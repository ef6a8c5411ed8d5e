"""pymodbus's simulator endpoints: ``POST /restapi/<page>`` (JSON) and ``GET /api/<page>`` (HTML).

The pages are pymodbus's four, ``registers``, ``calls``, ``log`` and ``server``, and the web
UI's ``faults``; this module gives their forms a meaning and the templates (``_web``,
``web/templates``) the data to show. The JSON
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
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
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
    """``params[key]`` as an int (a JSON integer or decimal digits), ``default`` when empty.

    pymodbus reads these with ``int()``, which also truncates 1.5 and fails on infinity
    with an error it does not catch; they are refused here.
    """
    value = params.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    raise BadInput(f"{key}={value!r} is not an integer")


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
    kind = params.get("value_type") or None
    if kind is not None:
        _set_typed(data, address, str(value or ""), str(kind), params.get("word_order") or None)
    elif value not in (None, ""):
        new = _int(params, "value", 0)
        if not 0 <= new <= 0xFFFF:
            raise BadInput(f"value={value!r}: a register holds 0..65535")
    if new is not None:
        data.cells[address].value = new
    if _checked(params, "writeable"):
        data.cells[address].writable = True


def _set_typed(
    data: SimulatorData, address: int, text: str, kind: str, word_order: str | None
) -> None:
    """The "Set" form with a type: ``text`` as a ``kind`` value from ``address`` on."""
    from ._datastore import VALUE_TYPES

    if kind not in VALUE_TYPES:
        raise BadInput(f"value_type={kind!r}; valid: {', '.join(VALUE_TYPES)}")
    if word_order not in (None, "big", "little"):
        raise BadInput(f"word_order={word_order!r}; valid: big, little")
    value: Any = text
    if kind != "string":
        value = _number("value", text.strip(), "float" if kind.startswith("float") else "int")
    try:
        data.set(address, value, kind, word_order=word_order)  # type: ignore[arg-type]
    except (ValueError, IndexError) as exc:
        raise BadInput(f"value={text!r} as {kind}: {exc}") from None


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
        except (OSError, RuntimeError) as exc:
            raise BadInput(f"the restart failed: {exc}") from None
        footer = "restarted"
    return {"result": "ok", "footer": footer, **status_json(simulator)}


def server_reset(simulator: ModbusSimulatorServer) -> None:
    """The server page's "Reset values": every unit's cells back to their initial values."""
    for data in simulator.units.values():
        data.reset()


# -- the faults page --------------------------------------------------------------------------

MATCH_FIELDS = ("unit", "function", "sub_function", "address", "nth", "connection")
# What each effect parameter is, for the form: int (decimal, or hex with 0x), float, bytes
# as hex, a checkbox, or a choice.
PARAMETER_KINDS = {
    "seconds": "float",
    "jitter": "float",
    "code": "int",
    "pdu": "hex",
    "offset": "int",
    "reply_unit": "int",
    "field": "choice",
    "keep": "int",
    "size": "int",
    "then_close": "bool",
    "pieces": "int",
    "gap": "float",
}
_LIFETIME_KINDS = {
    "times": "int",
    "skip": "int",
    "duration": "float",
    "probability": "float",
    "seed": "int",
    "phase": "str",
}


def fault_parameters() -> list[tuple[str, str, str]]:
    """Each effect parameter of the add form: its name, its kind, the effects that take it."""
    from trio_modbus.testing import FAULT_ACTIONS

    used: dict[str, list[str]] = {}
    for name, action in FAULT_ACTIONS.items():
        for field in dataclasses.fields(action):
            used.setdefault(field.name, []).append(name)
    return [
        (name, PARAMETER_KINDS.get(name, "str"), ", ".join(effects))
        for name, effects in used.items()
    ]


def _number(key: str, text: str, kind: str) -> Any:
    try:
        if kind == "float":
            number = float(text)
        elif text.lower().startswith(("0x", "-0x")):
            return int(text, 16)
        else:
            return int(text)
    except ValueError:
        what = "a number" if kind == "float" else "an integer"
        raise BadInput(f"{key}={text!r} is not {what}") from None
    if not math.isfinite(number):
        raise BadInput(f"{key}={text!r} is not a finite number")
    return number


def _match_text(key: str, text: str) -> Any:
    """A match field as the fault schema takes it: an int, ``"a..b"`` or a list."""
    if ".." in text:
        first, _, last = text.partition("..")
        return f"{_number(key, first.strip(), 'int')}..{_number(key, last.strip(), 'int')}"
    if "," in text:
        return [_number(key, part.strip(), "int") for part in text.split(",") if part.strip()]
    return _number(key, text, "int")


def fault_spec(params: Mapping[str, Any]) -> dict[str, Any]:
    """The fault rule (``add_faults`` fields) the faults page's add form asks for."""
    from trio_modbus.testing import FAULT_ACTIONS

    name = params.get("action")
    if name not in FAULT_ACTIONS:
        raise BadInput(f"action={name!r}; valid: {', '.join(FAULT_ACTIONS)}")
    own = {f.name for f in dataclasses.fields(FAULT_ACTIONS[name])}
    spec: dict[str, Any] = {"action": name}
    for key, kind in PARAMETER_KINDS.items():
        text = str(params.get(key, "")).strip()
        if not text or (kind == "bool" and not _checked(params, key)):
            continue
        if key not in own:
            valid = ", ".join(sorted(own)) or "none"
            raise BadInput(f"{key} is not a parameter of {name}; its parameters: {valid}")
        if kind == "bool":
            spec[key] = True
        elif kind in ("hex", "choice", "str"):
            spec[key] = text
        else:
            spec[key] = _number(key, text, kind)
    for key in MATCH_FIELDS:
        text = str(params.get(key, "")).strip()
        if text:
            spec[key] = _match_text(key, text)
    for key, kind in _LIFETIME_KINDS.items():
        text = str(params.get(key, "")).strip()
        if text:
            spec[key] = text if kind == "str" else _number(key, text, kind)
    return spec


def action_add_fault(simulator: ModbusSimulatorServer, params: Mapping[str, Any]) -> str:
    """The faults page's "Add rule": one fault rule from the form."""
    from trio_modbus.testing import add_faults

    try:
        [rule] = add_faults([fault_spec(params)], simulator.device.faults)
    except ConfigurationError as exc:
        raise BadInput(str(exc)) from None
    return f"rule {rule.id} added"


def action_delete_fault(simulator: ModbusSimulatorServer, params: Mapping[str, Any]) -> str:
    """The faults page's "Delete": one rule, by id."""
    wanted = _int(params, "rule", -1)
    for rule in simulator.device.faults.rules:
        if rule.id == wanted:
            simulator.device.faults.remove(rule)
            return f"rule {wanted} deleted"
    raise BadInput(f"no fault rule {wanted} (spent or deleted already)")


# -- what the pages show ----------------------------------------------------------------------

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _peer_text(peer: Any) -> str:
    if isinstance(peer, list | tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return "" if peer is None else str(peer)


def call_view(call: dict[str, Any]) -> dict[str, Any]:
    """One call of the call log (``record_json``) with the texts the calls page shows."""
    code = call["exception_code"]
    if code is not None:
        result = f"exception {code:02X}"
    elif call["reply_hex"] is None or not call["delivered"]:
        result = "no reply"
    else:
        result = "ok"
    if call["faults"]:
        result += f" ({', '.join(call['faults'])})"
    return {
        **call,
        "peer_text": _peer_text(call["peer"]),
        "result": result,
        "error": code is not None or not call["delivered"],
    }


def call_filters(params: Mapping[str, Any]) -> dict[str, Any]:
    """The calls page's filters (``f_unit``, ``f_function``, ``f_address``, ``f_errors``)."""
    result: dict[str, Any] = {}
    for key in ("unit", "function", "address"):
        text = str(params.get(f"f_{key}", "")).strip()
        if text:
            result[key] = str(_number(f"f_{key}", text, "int"))
        else:
            result[key] = ""
    result["errors"] = _checked(params, "f_errors")
    return result


def selected_calls(
    simulator: ModbusSimulatorServer, filters: Mapping[str, Any]
) -> list[RequestRecord]:
    """The calls that pass the filters, oldest first."""
    from trio_modbus.testing._recorder import overlaps

    unit = int(filters["unit"]) if filters.get("unit") else None
    function = int(filters["function"]) if filters.get("function") else None
    address = int(filters["address"]) if filters.get("address") else None
    selected = []
    for record in simulator.device.recorder:
        if unit is not None and record.unit != unit:
            continue
        if function is not None and record.function_code != function:
            continue
        if address is not None and not overlaps(record.request, address):
            continue
        if filters.get("errors") and record.exception_code is None and record.delivered:
            continue
        selected.append(record)
    return selected


def calls_download(simulator: ModbusSimulatorServer, params: Mapping[str, Any]) -> Response:
    """The calls that pass the filters, as JSON lines (a download)."""
    import json

    from ._http import record_json

    start = simulator.started_at or 0.0
    lines = [
        json.dumps(record_json(record, start)) + "\n"
        for record in selected_calls(simulator, call_filters(params))
    ]
    return Response(
        "".join(lines),
        media_type="application/x-ndjson",
        headers={"content-disposition": 'attachment; filename="calls.jsonl"'},
    )


def calls_view(
    simulator: ModbusSimulatorServer, params: Mapping[str, Any], state_json: dict[str, Any]
) -> dict[str, Any]:
    """The calls page: the newest calls that pass the filters, and pymodbus's forms."""
    from ._http import record_json
    from ._web import CALL_ROWS

    filters = call_filters(params)
    selected = selected_calls(simulator, filters)
    start = simulator.started_at or 0.0
    shown = [call_view(record_json(r, start)) for r in reversed(selected[-CALL_ROWS:])]
    query = {f"f_{k}": v for k, v in filters.items() if k != "errors" and v}
    if filters["errors"]:
        query["f_errors"] = "1"
    return {
        "calls": shown,
        "matching": len(selected),
        "total": len(simulator.device.recorder),
        "latest": simulator.device.recorder[-1].seq if len(simulator.device.recorder) else 0,
        "cap": CALL_ROWS,
        "filters": filters,
        "view": "hex" if params.get("view") == "hex" else "decoded",
        "function_names": [(code.value, code.name.lower()) for code in FunctionCode],
        "download_href": "/api/calls?" + urlencode({"download": "jsonl", **query}),
        "j": state_json,
    }


def registers_view(
    simulator: ModbusSimulatorServer, state: CompatState, result: str, foot: str | None
) -> dict[str, Any]:
    """The registers page: the registers of the filter, the filter and set forms."""
    from ._datastore import VALUE_TYPES

    data = simulator.data
    rows = []
    for address in state.register_filter:
        if address >= len(data.cells) or data.cells[address].type is CellType.NEXT:
            continue
        rows.append({"address": address, **text_register(data, address)})
    if foot is None:
        foot = (
            f"{len(state.register_filter)} register(s) monitored"
            if state.register_filter
            else "Nothing selected"
        )
    return {
        "rows": rows,
        "foot": foot,
        "result": result,
        "types": list(type_ids(data).items()),
        "actions": list(action_ids(simulator).items()),
        "value_types": VALUE_TYPES,
        "word_order": data.word_order,
    }


def rule_view(rule_data: dict[str, Any]) -> dict[str, Any]:
    """One fault rule (``rule_json``) with the texts the faults page shows."""
    known = {
        "id",
        "action",
        "phase",
        *MATCH_FIELDS,
        *_LIFETIME_KINDS,
        "matched",
        "fired",
        "remaining",
        "expires_in",
    }
    parameters = ", ".join(f"{k}={v}" for k, v in rule_data.items() if k not in known)
    match = " ".join(f"{k}={rule_data[k]}" for k in MATCH_FIELDS if k in rule_data)
    expires = rule_data["expires_in"]
    return {
        "id": rule_data["id"],
        "action": rule_data["action"],
        "parameters": parameters or "none",
        "match": match or "any request",
        "phase": rule_data["phase"],
        "hits": f"{rule_data['fired']} of {rule_data['matched']} matched",
        "remaining": "unlimited" if rule_data["remaining"] is None else rule_data["remaining"],
        "expires": "never" if expires is None else f"{expires:.1f}",
    }


def faults_view(simulator: ModbusSimulatorServer, state_json: dict[str, Any]) -> dict[str, Any]:
    """The faults page: the active rules, the add form and pymodbus's Simulate form."""
    import trio

    from trio_modbus.testing import FAULT_ACTIONS

    from ._http import rule_json

    now = trio.current_time()
    return {
        "rules": [rule_view(rule_json(r, now)) for r in simulator.device.faults.rules],
        "actions": list(FAULT_ACTIONS),
        "parameters": fault_parameters(),
        "match_fields": MATCH_FIELDS,
        "j": state_json,
    }


def log_view(state_json: dict[str, Any], level: str) -> dict[str, Any]:
    """The log page: the lines at ``level`` or above, with their clock time."""
    import time

    floor = LOG_LEVELS.index(level) if level in LOG_LEVELS else 0

    def rank(name: str) -> int:
        return LOG_LEVELS.index(name) if name in LOG_LEVELS else len(LOG_LEVELS)

    lines = [
        {
            **line,
            "clock": time.strftime("%H:%M:%S", time.localtime(line["time"]))
            + f".{int(line['time'] * 1000) % 1000:03d}",
        }
        for line in state_json["log_rows"]
        if rank(line["level"]) >= floor
    ]
    return {
        "lines": lines,
        "footer": state_json["footer"],
        "levels": LOG_LEVELS,
        "level": LOG_LEVELS[floor],
    }


def server_view(simulator: ModbusSimulatorServer, state_json: dict[str, Any]) -> dict[str, Any]:
    """The server page: status, listeners, connected clients, counters."""
    clients = [_peer_text(peer) for peer in state_json["modbus"]["clients"]]
    return {
        "s": state_json,
        "listener": _peer_text(state_json["modbus"]["address"]),
        "http": _peer_text(state_json["http"]),
        "clients": clients,
        "footer": state_json["footer"],
    }


# -- routes -----------------------------------------------------------------------------------

HTML_PAGES = (*PAGES, "faults")
TITLES = {name: name.capitalize() for name in HTML_PAGES}


def _compat_error(status: int, message: str) -> Response:
    return JSONResponse({"result": "error", "error": message}, status_code=status)


def compat_routes(simulator: ModbusSimulatorServer, token: str | None) -> list[Route]:
    """The routes of pymodbus's simulator, on a state of their own, and the web pages.

    Args:
        simulator: The simulator they show and steer.
        token: The token every request needs, or None.

    Returns:
        ``POST /restapi/<page>``, ``GET /api/<page>`` (pymodbus's four and ``faults``) and
        ``GET /``.
    """
    from ._http import _json_body, guard
    from ._web import WebTemplates

    state = CompatState()
    templates = WebTemplates(simulator.web_app_path)

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

    async def act(name: str, params: dict[str, Any]) -> tuple[Response | None, dict[str, Any]]:
        """Do what the form asks; a response (a download) or the page's context."""
        submit = params.get("submit")
        if name == "registers":
            foot = None
            if submit == "Clear":
                state.register_filter = []
            elif submit == "Add":
                foot = action_add(simulator, state, params)
            elif submit == "Set":
                action_set(simulator, params)
            return None, registers_view(simulator, state, "ok", foot)
        if name == "calls":
            if params.get("download") == "jsonl":
                return calls_download(simulator, params), {}
            state_json = calls_json(simulator, state, params, html_form=True)
            return None, calls_view(simulator, params, state_json)
        if name == "faults":
            message = ""
            if submit in ("Simulate", "Reset"):
                calls_json(simulator, state, params, html_form=True)
                message = f"{submit}: ok"
            elif submit == "Add":
                message = action_add_fault(simulator, params)
            elif submit == "Delete":
                message = action_delete_fault(simulator, params)
            elif submit == "Clear":
                simulator.device.faults.clear()
                state.rule_ids = []
                message = "every rule deleted"
            state_json = calls_json(simulator, state, {}, html_form=True)
            return None, {"message": message, **faults_view(simulator, state_json)}
        if name == "log":
            if submit == "Download":
                text = "".join(
                    f"{line['time']:.3f} {line['level']} {line['logger']}: {line['message']}\n"
                    for line in simulator.log_buffer.lines
                )
                return PlainTextResponse(
                    text, headers={"content-disposition": 'attachment; filename="simulator.log"'}
                ), {}
            return None, log_view(log_json(simulator, params), str(params.get("level", "")))
        message = ""
        if submit == "Reset":
            server_reset(simulator)
            message = "values reset"
        status = await server_json(simulator, params)
        if submit == "Reset":
            status["footer"] = "values reset"
        return None, {"message": message, **server_view(simulator, status)}

    async def page(request: Request) -> Response:
        name = request.path_params["page"]
        params = dict(request.query_params)
        refresh = params.pop("refresh", None)
        status = 200
        try:
            if refresh is not None:
                state.refresh_rate = max(0, _int({"refresh": refresh}, "refresh", 0))
            response, context = await act(name, params)
        except BadInput as exc:
            status = 400
            view = {k: v for k, v in params.items() if k not in ("submit", "download")}
            try:  # the page again, without the action; if a filter was the bad input, bare
                response, context = await act(name, view)
            except BadInput:
                response, context = await act(name, {})
            context = {
                **context,
                "message": f"Result of last command: {exc}",
                "error": True,
                "result": str(exc),
            }
        if response is not None:
            return response
        context.setdefault("message", "")
        context.setdefault("error", False)
        # A refresh reloads the view, never the action (or the refresh rate) that made it.
        kept = {k: v for k, v in params.items() if k not in ("submit", "download")}
        refresh_url = f"/api/{name}" + (f"?{urlencode(kept)}" if kept else "")
        return templates.page(
            f"{name}.html",
            status_code=status,
            page=name,
            title=TITLES[name],
            refresh=state.refresh_rate,
            refresh_url=refresh_url,
            **context,
        )

    async def index(request: Request) -> Response:
        return templates.page(
            "index.html",
            page="index",
            title="Modbus simulator",
            refresh=0,
            message="",
            error=False,
        )

    def page_error(request: Request) -> Callable[[int, str], Response]:
        def error(status: int, message: str) -> Response:
            target = request.url.path
            if request.url.query:
                target += "?" + request.url.query
            return templates.page(
                "login.html" if status == 401 else "error.html",
                status_code=status,
                page="login",
                title="Log in" if status == 401 else "Refused",
                refresh=0,
                message=message,
                error=True,
                target=target,
                needs_token=token is not None,
                quoted=quote(target),
            )

        return error

    async def page_guarded(request: Request) -> Response:
        # refresh= changes what every page sends (its refresh rate): state, like submit=.
        changing = "submit" in request.query_params or "refresh" in request.query_params
        return await guard(page, token, state_changing=changing, error=page_error(request))(
            request
        )

    async def index_guarded(request: Request) -> Response:
        return await guard(index, token, error=page_error(request))(request)

    return [
        Route(
            "/restapi/{page:str}",
            _only(PAGES, guard(rest, token, state_changing=True, error=_compat_error)),
            methods=["POST"],
        ),
        Route("/api/{page:str}", _only(HTML_PAGES, page_guarded), methods=["GET"]),
        Route("/", index_guarded, methods=["GET"]),
    ]


def _only(pages: tuple[str, ...], endpoint: Callable[[Request], Any]) -> Callable[[Request], Any]:
    async def check(request: Request) -> Response:
        if request.path_params["page"] not in pages:
            return _compat_error(
                404, f"no page {request.path_params['page']!r}; pages: {', '.join(pages)}"
            )
        response: Response = await endpoint(request)
        return response

    return check
