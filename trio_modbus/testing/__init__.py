"""Tools for testing Modbus clients and servers: fake devices, recording, faults, a raw client.

A :class:`FakeDevice` is a datastore-backed device served over any transport (TCP, TLS, UDP,
RTU over TCP, a serial line, an in-memory stream, or from a thread for synchronous
clients). It records every request (:class:`Recorder`) and applies faults from rules
(:mod:`trio_modbus.testing.faults`), each of which can be checked to have taken effect.
"""

from trio_modbus._public import publish
from trio_modbus.testing._config import FAULT_ACTIONS, add_faults, load_faults, load_units
from trio_modbus.testing._data import DataView, TableView, UnitView
from trio_modbus.testing._device import DeviceThread, FakeDevice
from trio_modbus.testing._expect import Expectation, Reply
from trio_modbus.testing._recorder import Criteria, Recorder, RequestRecord

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

publish(__name__, globals(), __all__)
