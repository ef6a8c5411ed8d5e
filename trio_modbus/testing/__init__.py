"""Tools for testing Modbus clients and servers: fake devices, recording, faults, a raw client.

A :class:`FakeDevice` is a datastore-backed device served over any transport (TCP, TLS, UDP,
RTU over TCP, a serial line, an in-memory stream, or from a thread for synchronous
clients). It records every request (:class:`Recorder`) and applies faults from rules
(:mod:`trio_modbus.testing.faults`), each of which can be checked to have taken effect.
"""

import typing

from trio_modbus._public import lazy_exports

if typing.TYPE_CHECKING:
    from trio_modbus.testing._config import FAULT_ACTIONS, add_faults, load_faults, load_units
    from trio_modbus.testing._data import DataView, TableView, UnitView
    from trio_modbus.testing._device import FakeDevice
    from trio_modbus.testing._expect import Expectation, Reply
    from trio_modbus.testing._recorder import Criteria, Recorder, RequestRecord
    from trio_modbus.testing._thread import DeviceThread

__all__ = [
    "FAULT_ACTIONS",
    "Criteria",
    "DataView",
    "DeviceThread",
    "Expectation",
    "FakeDevice",
    "Recorder",
    "Reply",
    "RequestRecord",
    "TableView",
    "UnitView",
    "add_faults",
    "load_faults",
    "load_units",
]

# Imported when first used: the pytest plugin (trio_modbus.testing.plugin) is loaded in every
# pytest session where trio_modbus is installed, and must not import Trio there.
__getattr__ = lazy_exports(
    __name__,
    globals(),
    {
        **dict.fromkeys(
            ["FAULT_ACTIONS", "add_faults", "load_faults", "load_units"],
            "trio_modbus.testing._config",
        ),
        **dict.fromkeys(["DataView", "TableView", "UnitView"], "trio_modbus.testing._data"),
        "DeviceThread": "trio_modbus.testing._thread",
        "FakeDevice": "trio_modbus.testing._device",
        **dict.fromkeys(["Expectation", "Reply"], "trio_modbus.testing._expect"),
        **dict.fromkeys(
            ["Criteria", "Recorder", "RequestRecord"], "trio_modbus.testing._recorder"
        ),
    },
)
