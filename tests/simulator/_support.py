"""Helpers of the simulator tests: a device from a few sections, and the service's answer."""

from __future__ import annotations

import copy
from typing import Any

from trio_modbus.datastore.context import ModbusServerContext
from trio_modbus.service import DatastoreService, RequestContext
from trio_modbus.simulator import SimulatorData, build_server_context, load_config

SETUP: dict[str, Any] = {
    "co size": 20,
    "di size": 20,
    "hr size": 20,
    "ir size": 20,
    "shared blocks": True,
    "type exception": False,
    "defaults": {
        "value": {"bits": 0, "uint16": 0, "uint32": 0, "float32": 0.0, "string": " "},
        "action": {"bits": None, "uint16": None, "uint32": None, "float32": None, "string": None},
    },
}


def document(
    server: dict[str, Any] | None = None, setup: dict[str, Any] | None = None, **sections: Any
) -> dict[str, Any]:
    """A whole configuration: one TCP server, one device with ``sections``."""
    device_setup = copy.deepcopy(SETUP)
    device_setup.update(setup or {})
    device: dict[str, Any] = {
        "setup": device_setup,
        "invalid": [],
        "write": [],
        "bits": [],
        "uint16": [],
        "uint32": [],
        "float32": [],
        "string": [],
        "repeat": [],
    }
    device.update(sections)
    entry = {"comm": "tcp", "host": "127.0.0.1", "port": 5020, "framer": "socket"}
    entry.update(server or {})
    return {"server_list": {"server": entry}, "device_list": {"device": device}}


def make_data(
    server: dict[str, Any] | None = None,
    setup: dict[str, Any] | None = None,
    custom_actions: Any = None,
    data_options: dict[str, Any] | None = None,
    **sections: Any,
) -> SimulatorData:
    config = load_config(document(server, setup, **sections), custom_actions=custom_actions)
    _, device = config.select()
    return SimulatorData(device, custom_actions=config.custom_actions, **(data_options or {}))


def service_for(data: SimulatorData, **server: Any) -> DatastoreService:
    config = load_config(document(server))
    server_config, _ = config.select()
    context: ModbusServerContext = build_server_context(data, server_config)
    return DatastoreService(context, ignore_missing_devices=server_config.ignore_missing_devices)


async def ask(service: DatastoreService, pdu_hex: str, unit: int = 1) -> bytes | None:
    """The reply PDU to one request PDU (hex), or None."""
    return await service.process(bytes.fromhex(pdu_hex), RequestContext(unit_id=unit))
