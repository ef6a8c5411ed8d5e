"""load_config and select: pymodbus's format read unchanged, errors with JSON paths."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from trio_modbus import ConfigurationError, FramerType
from trio_modbus.simulator import CellType, SimulatorData, load_config

from ._support import document


def test_default_configuration() -> None:
    config = load_config()
    server, device = config.select()
    assert (server.comm, server.host, server.port, server.framer) == (
        "tcp",
        "127.0.0.1",
        5020,
        FramerType.SOCKET,
    )
    assert config.source is not None and config.source.endswith("default.json")
    data = SimulatorData(device)
    assert data.get(70) == "trio_modbus simulator "
    assert server.server_options()["port"] == 5020


def test_select_picks_the_only_or_first_and_names_the_choices() -> None:
    doc = document()
    doc["server_list"]["second"] = {"comm": "udp", "port": 1502}
    doc["device_list"]["other"] = copy.deepcopy(doc["device_list"]["device"])
    config = load_config(doc)
    assert [x.name for x in config.select()] == ["server", "device"]
    assert [x.name for x in config.select("second", "other")] == ["second", "other"]
    with pytest.raises(
        ConfigurationError, match=r"server_list: no entry 'nope'; valid: 'server', 'second'"
    ):
        config.select("nope")
    with pytest.raises(
        ConfigurationError, match=r"device_list: no entry 'x'; valid: 'device', 'other'"
    ):
        config.select(None, "x")
    with pytest.raises(ConfigurationError, match="empty"):
        load_config({"server_list": {}, "device_list": {}}).select()


def test_every_server_key() -> None:
    doc = document()
    doc["server_list"] = {
        "tcp": {"comm": "tcp", "host": "0.0.0.0", "port": 502, "framer": "rtu", "device_id": "7",
                "ignore_missing_slaves": True, "broadcast_enable": False, "retries": 3,
                "identity": {"VendorName": "v", "ProductCode": "p", "MajorMinorRevision": "1"}},
        "tls": {"comm": "tls", "framer": "tls", "certfile": "c.pem", "keyfile": "k.pem", "password": "pw"},  # noqa: E501
        "udp": {"comm": "udp", "framer": "socket", "ignore_missing_devices": False},
        "serial": {"comm": "serial", "port": "/dev/ttyS0", "framer": "ascii", "baudrate": 9600,
                   "bytesize": 7, "parity": "E", "stopbits": 2, "timeout": 3, "reconnect_delay": 2,
                   "broadcast_enable": True, "handle_local_echo": True},
    }  # fmt: skip
    config = load_config(doc)
    tcp, tls, udp, serial = config.servers.values()
    assert (tcp.device_id, tcp.ignore_missing_devices, tcp.framer) == (7, True, FramerType.RTU)
    assert tcp.make_identity()[0] == "v"
    assert (tls.port, tls.host, tls.certfile, tls.password) == (802, "127.0.0.1", "c.pem", "pw")
    assert "framer" not in tls.server_options() and tls.server_options()["keyfile"] == "k.pem"
    assert udp.port == 502
    assert (serial.baudrate, serial.bytesize, serial.parity, serial.stopbits) == (9600, 7, "E", 2)
    assert serial.timeout == 3.0 and serial.options["reconnect_delay"] == 2
    options = serial.server_options()
    assert options["broadcast"] is True and options["handle_local_echo"] is True
    assert "host" not in options


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["server_list"]["server"].update(comm="can"), r"server_list\.server\.comm: 'can' is not a transport; valid: 'tcp', 'tls', 'udp', 'serial'"),  # noqa: E501
        (lambda d: d["server_list"]["server"].update(framer="tls"), r"server_list\.server\.framer: 'tls' is not a framer for comm 'tcp'; valid: 'socket', 'rtu', 'ascii'"),  # noqa: E501
        (lambda d: d["server_list"]["server"].update(port=70000), r"server_list\.server\.port: expected an integer in 0\.\.65535"),  # noqa: E501
        (lambda d: d["server_list"]["server"].update(speed=1), r"server_list\.server\.speed: unknown key; valid keys: 'comm'"),  # noqa: E501
        (lambda d: d["server_list"]["server"].update(device_id=300), r"server_list\.server\.device_id"),  # noqa: E501
        (lambda d: d["server_list"]["server"].update(identity={"Vendor": "x"}), r"server_list\.server\.identity\.Vendor: unknown key"),  # noqa: E501
        (lambda d: d["server_list"]["server"].update(ignore_missing_devices=True, ignore_missing_slaves=False), "disagree"),  # noqa: E501
        (lambda d: d["device_list"]["device"].update(uint32=[{"addr": [0, 1]}, [3, 5]]), r"device_list\.device\.uint32\[1\]\.addr: uint32 takes 2 registers per value; \[3, 5\] is 3"),  # noqa: E501
        (lambda d: d["device_list"]["device"].update(uint32=[{"addr": [0, 1]}, {"addr": [2, 3], "value": -1}]), r"device_list\.device\.uint32\[1\]\.value: expected an integer in 0\.\.4294967295"),  # noqa: E501
        (lambda d: d["device_list"]["device"].update(uint16=[[0, 25]]), r"device_list\.device\.uint16\[0\]\.addr\[1\]: expected an integer in 0\.\.19"),  # noqa: E501
        (lambda d: d["device_list"]["device"].update(uint16=[[5, 4]]), "before first"),
        (lambda d: d["device_list"]["device"].update(uint16=[0], bits=[0]), r"device_list\.device\.uint16\[0\]\.addr: cell 0 is already defined by device_list\.device\.bits\[0\]"),  # noqa: E501
        (lambda d: d["device_list"]["device"].update(uint16=[{"addr": 0, "action": "jump"}]), r"device_list\.device\.uint16\[0\]\.action: 'jump' is not an action; valid: null, 'increment', 'random', 'reset', 'timestamp', 'uptime'"),  # noqa: E501
        (lambda d: d["device_list"]["device"].update(uint16=[{"addr": 0, "action": "increment", "parameters": {"step": 2}}]), r"parameters\.step: 'increment' takes no such parameter; valid: 'maxval', 'minval'"),  # noqa: E501
        (lambda d: d["device_list"]["device"].update(string=[{"addr": 0, "action": "increment"}]), "does not apply to string"),  # noqa: E501
        (lambda d: d["device_list"]["device"].update(uint16=[{"addr": 0, "action": "random", "parameters": {"minval": 70000}}]), "leaves no uint16 value"),  # noqa: E501
        (lambda d: d["device_list"]["device"].update(string=[{"addr": [0, 1], "value": "12345"}]), r"string\[0\]\.value: '12345' is 5 bytes"),  # noqa: E501
        (lambda d: d["device_list"]["device"].update(write=[3]), r"device_list\.device\.write\[0\]: cell 3 is not defined by any type section"),  # noqa: E501
        (lambda d: d["device_list"]["device"].update(invalid=[[0, 30]]), r"device_list\.device\.invalid\[0\]\[1\]"),  # noqa: E501
        (lambda d: d["device_list"]["device"].update(repeat=[{"addr": [0, 1], "to": [10, 40]}]), r"device_list\.device\.repeat\[0\]\.to\[1\]"),  # noqa: E501
        (lambda d: d["device_list"]["device"].update(extra=[]), r"device_list\.device\.extra: unknown key; valid keys: 'setup', 'invalid', 'write', 'bits'"),  # noqa: E501
        (lambda d: d["device_list"]["device"]["setup"].update({"co size": -1}), r'device_list\.device\.setup\["co size"\]: expected an integer in 0\.\.65536'),  # noqa: E501
        (lambda d: d["device_list"]["device"]["setup"]["defaults"]["action"].update(uint16="spin"), r"device_list\.device\.setup\.defaults\.action\.uint16: 'spin' is not an action"),  # noqa: E501
        (lambda d: d["device_list"]["device"].pop("setup"), r"device_list\.device: missing section 'setup'"),  # noqa: E501
        (lambda d: d.pop("device_list"), "device_list: missing"),
    ],
)  # fmt: skip
def test_errors_name_the_json_path_and_the_choices(change: Any, message: str) -> None:
    doc = document()
    change(doc)
    with pytest.raises(ConfigurationError, match=message):
        load_config(doc)


def test_validation_is_atomic_and_the_input_unchanged(tmp_path: Path) -> None:
    """pymodbus deletes the sections from the dict it is given as it reads them."""
    doc = document(uint16=[[0, 3]], write=[1])
    before = copy.deepcopy(doc)
    config = load_config(doc)
    assert doc == before
    bad = copy.deepcopy(doc)
    bad["device_list"]["second"] = copy.deepcopy(doc["device_list"]["device"])
    bad["device_list"]["second"]["uint16"].append(99)
    with pytest.raises(ConfigurationError, match=r"device_list\.second\.uint16\[1\]"):
        load_config(bad)
    assert config.select()[1].register_count == 20  # what was loaded before is untouched
    path = tmp_path / "broken.json"
    path.write_text("{ not json")
    with pytest.raises(ConfigurationError, match=r"not valid JSON.*line 1"):
        load_config(path)
    with pytest.raises(ConfigurationError, match="No such file"):
        load_config(tmp_path / "missing.json")


def test_pymodbus_aliases_and_later_sections() -> None:
    doc = document(
        server={"ignore_missing_slaves": True},
        uint16=[{"addr": 0, "action": "increment", "kwargs": {"maxval": 3}}],
        int16=[{"addr": 1, "value": -5}],
        float64=[{"addr": [2, 5], "value": 1e300}],
        repeat=[{"addr": [0, 1], "to": [10, 14]}],
        invalid=[5],
        write=[0, [2, 5]],
    )
    config = load_config(doc)
    server, device = config.select()
    assert server.ignore_missing_devices is True
    assert device.entries[0].parameters == {"maxval": 3}
    data = SimulatorData(device)
    assert data.get(1) == -5
    assert data.cells[2].type is CellType.FLOAT64 and data.cells[2].writable
    assert data.cells[5].type is CellType.INVALID  # invalid wins over float64's last cell
    # repeat cycles 0, 1, 0, 1, 0 over 10..14, copying type, value, action and access.
    assert [data.cells[i].type for i in range(10, 15)] == [CellType.UINT16, CellType.INT16] * 2 + [
        CellType.UINT16
    ]
    assert data.cells[12].action == "increment" and data.cells[12].writable
    assert [e.type for e in device.entries] == ["uint16", "int16", "float64"]


def test_missing_sections_default_like_pymodbus_values() -> None:
    config = load_config(
        {
            "server_list": {"s": {}},
            "device_list": {"d": {"setup": {"hr size": 4}, "uint16": [[0, 3]]}},
        }
    )
    server, device = config.select()
    assert (server.comm, server.port, server.framer) == ("tcp", 502, FramerType.SOCKET)
    assert device.shared_blocks and not device.type_exception and device.register_count == 4
    assert device.default_values["string"] == " "


def test_file_and_mapping_give_the_same(tmp_path: Path) -> None:
    doc = document(uint16=[[0, 3]])
    path = tmp_path / "sim.json"
    path.write_text(json.dumps(doc))
    from_file = load_config(path)
    from_doc = load_config(doc)
    assert from_file.select()[1] == from_doc.select()[1]
    assert from_file.source == str(path) and from_doc.source is None
