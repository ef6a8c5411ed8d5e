"""The pytest plugin: its fixtures, marker and teardown checks, each run in a pytester session.

The inner sessions find the plugin by its ``pytest11`` entry point, read from pyproject.toml
into a ``.dist-info`` on their ``sys.path`` (as an installed trio_modbus provides it), and run
in trio mode; pytest-trio comes from its own installed entry point.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import socket
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

# Imported here, before any inner session, so that every session sees the same modules
# (pytester removes from sys.modules what an inner session imported).
import trio_modbus.testing  # noqa: F401
import trio_modbus.testing.plugin as plugin
from trio_modbus.testing.plugin import ModbusConnectionLeakWarning

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = [
    "modbus_device",
    "modbus_device_config",
    "modbus_device_factory",
    "modbus_device_session_config",
    "modbus_device_thread",
    "modbus_device_thread_session",
    "modbus_device_thread_shared",
    "modbus_memory",
    "modbus_raw",
    "modbus_serial_device",
]

# What the inner tests share: MBAP and RTU frames, read back by length.
HELPERS = """
import json, socket, struct, time
import pytest, trio
from trio_modbus.framing import crc16_bytes
from trio_modbus.testing import faults

def mbap(tid, pdu, unit=1):
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu

def rtu(pdu, unit=1):
    return bytes([unit]) + pdu + crc16_bytes(bytes([unit]) + pdu)

READ_0_2 = bytes.fromhex("03 0000 0002")

async def exchange(stream, frame):
    await stream.send_all(frame)
    data = b""
    with trio.fail_after(10):
        while len(data) < 6 or len(data) < 6 + int.from_bytes(data[4:6], "big"):
            data += await stream.receive_some(256)
    return data

def sync_exchange(address, frame):
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(frame)
        return sock.recv(256)

def note(name, value):  # tell the outer test something
    with open(name + ".json", "w") as f:
        json.dump(value, f)
"""


def entry_points() -> dict[str, str]:
    """The pytest11 entry points pyproject.toml declares."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return dict(project["entry-points"]["pytest11"])


def sockets() -> set[str]:
    """This process's open sockets (``socket:[inode]``)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed since
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:"):
                found.add(target)
    return found


@pytest.fixture
def tester(pytester: pytest.Pytester) -> Iterator[pytest.Pytester]:
    """A pytester whose sessions load the plugin by its entry point, in trio mode.

    It checks that no session leaves a thread or a socket behind.
    """
    dist = pytester.path / "trio_modbus_entry_point_probe-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: trio-modbus-entry-point-probe\nVersion: 0\n"
    )
    lines = [f"{name} = {target}\n" for name, target in entry_points().items()]
    (dist / "entry_points.txt").write_text("[pytest11]\n" + "".join(lines))
    pytester.syspathinsert()
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(modbus_helpers=HELPERS)
    threads, open_sockets = set(threading.enumerate()), sockets()
    yield pytester
    assert set(threading.enumerate()) <= threads  # none new (another test's may have ended)
    assert sockets() <= open_sockets


def noted(pytester: pytest.Pytester, name: str) -> object:
    return json.loads((pytester.path / f"{name}.json").read_text())


def refused(address: list[object]) -> bool:
    try:
        socket.create_connection((str(address[0]), int(str(address[1]))), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


# -- loading -------------------------------------------------------------------------------------


def test_the_entry_point_is_trio_modbus_and_names_the_plugin_module() -> None:
    assert entry_points() == {"trio_modbus": "trio_modbus.testing.plugin"}


def test_the_fixtures_are_listed_with_their_summaries(tester: pytest.Pytester) -> None:
    result = tester.runpytest("--fixtures", "-p", "no:cacheprovider")
    assert result.ret == 0
    out = result.stdout.str()
    for name in FIXTURES:
        assert f"\n{name}" in out, name
    result.stdout.fnmatch_lines(["modbus_device -- *trio_modbus*plugin.py*", "    A fake device*"])
    assert "_modbus_devices" not in out  # private: shown with -v only


def test_the_marker_is_registered_and_strict_markers_accept_it(tester: pytest.Pytester) -> None:
    result = tester.runpytest("--markers", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["@pytest.mark.modbus_device(units=None, *, sparse=False*"])
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.modbus_device({1: {"holding_registers": {0: 5}}})
        def test_it(modbus_device_thread):
            assert modbus_device_thread.datastore[1].holding_registers[0] == 5
        """
    )
    tester.runpytest("--strict-markers", "-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_p_no_trio_modbus_disables_the_plugin(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        def test_it(modbus_device_thread):
            pass
        """
    )
    result = tester.runpytest("-p", "no:trio_modbus", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'modbus_device_thread' not found*"])
    result = tester.runpytest("--fixtures", "-p", "no:trio_modbus", "-p", "no:cacheprovider")
    assert "modbus_device" not in result.stdout.str()


def test_the_plugin_loads_without_pytest_trio_and_its_sync_fixtures_work(
    tester: pytest.Pytester,
) -> None:
    tester.makeini("[pytest]\n")  # no trio_mode: pytest-trio is not there to know it
    tester.makepyfile(
        """
        from modbus_helpers import *

        def test_it(modbus_device_thread):
            reply = sync_exchange(modbus_device_thread.address, mbap(1, READ_0_2))
            assert reply == mbap(1, bytes.fromhex("03 04 0000 0000"))
        """
    )
    result = tester.runpytest("-p", "no:trio", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result = tester.runpytest("--fixtures", "-p", "no:trio", "-p", "no:cacheprovider")
    assert "modbus_device_factory" in result.stdout.str()


def test_the_plugin_module_imports_only_pytest_and_the_standard_library() -> None:
    """At module level (the device and Trio are imported by the fixtures, when they run).

    Its parent packages import Trio and the servers anyway: see the module's docstring.
    """
    tree = ast.parse(Path(plugin.__file__).read_text())
    imported = set()
    for node in tree.body:  # module level only: not under ``if TYPE_CHECKING``
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            imported.add(node.module.split(".")[0])
    assert imported - {"__future__", "pytest"} <= set(sys.stdlib_module_names)
    assert "trio" not in imported and "trio_modbus" not in imported


def test_the_public_names_are_the_fixtures_the_hook_and_the_warning() -> None:
    assert set(plugin.__all__) == {*FIXTURES, "ModbusConnectionLeakWarning", "pytest_configure"}
    assert issubclass(ModbusConnectionLeakWarning, ResourceWarning)


# -- the devices ---------------------------------------------------------------------------------


def test_modbus_device_serves_tcp_udp_and_rtu_over_tcp_as_the_marker_says(
    tester: pytest.Pytester,
) -> None:
    tester.makepyfile(
        """
        from modbus_helpers import *

        async def test_tcp(modbus_device):
            host, port = modbus_device.address
            assert host == "127.0.0.1" and port > 0
            stream = await trio.open_tcp_stream(host, port)
            async with stream:
                assert await exchange(stream, mbap(1, READ_0_2)) == mbap(
                    1, bytes.fromhex("03 04 0000 0000")
                )
            note("tcp", modbus_device.address)

        @pytest.mark.modbus_device({1: {"holding_registers": {0: [10, 20]}}}, transport="udp")
        async def test_udp(modbus_device):
            sock = trio.socket.socket(type=trio.socket.SOCK_DGRAM)
            with sock:
                await sock.connect(modbus_device.address)
                await sock.send(mbap(3, READ_0_2))
                with trio.fail_after(10):
                    assert await sock.recv(256) == mbap(3, bytes.fromhex("03 04 000a 0014"))
            modbus_device.recorder.assert_called(fc=3, transport="udp")

        @pytest.mark.modbus_device(transport="rtu_over_tcp")
        async def test_rtu_over_tcp(modbus_device):
            stream = await trio.open_tcp_stream(*modbus_device.address)
            async with stream:
                await stream.send_all(rtu(READ_0_2))
                data = b""
                with trio.fail_after(10):
                    while len(data) < 9:
                        data += await stream.receive_some(256)
            assert data == rtu(bytes.fromhex("03 04 0000 0000"))
        """
    )
    tester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)
    assert refused(noted(tester, "tcp"))  # type: ignore[arg-type]


def test_the_config_fixture_and_markers_merge_closest_last(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def modbus_device_config():
            return {"units": {1: {"holding_registers": {0: 1}}}, "sparse": True}

        def test_the_config(modbus_device_thread):
            dev = modbus_device_thread
            assert dev.datastore[1].holding_registers[0] == 1
            with pytest.raises(KeyError):
                dev.datastore[1].holding_registers[1]
            assert not dev.strict

        @pytest.mark.modbus_device(strict=True, units={2: {}})
        class TestMarked:
            @pytest.mark.modbus_device({3: {}})
            def test_closest_wins(self, modbus_device_thread):
                assert list(modbus_device_thread.datastore) == [3]
                assert modbus_device_thread.strict  # from the class's marker
                modbus_device_thread.expect(fc=3, required=False)

        @pytest.mark.modbus_device(transport="serial")
        def test_bad_transport(modbus_device_thread):
            pass

        @pytest.mark.modbus_device(colour="blue")
        def test_bad_argument(modbus_device_thread):
            pass
        """
    )
    result = tester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_bad_transport*",
            "modbus_device transport='serial'; allowed: tcp, udp, rtu_over_tcp",
            "*ERROR at setup of test_bad_argument*",
        ]
    )
    assert (
        "modbus_device arguments ['colour', 'sparse', 'units']: got an unexpected keyword "
        "argument 'colour'" in result.stdout.str()
    )
    assert "During handling" not in result.stdout.str()


def test_the_factory_serves_several_devices_and_stops_them_all(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        from modbus_helpers import *

        async def test_two(modbus_device_factory):
            a = await modbus_device_factory({1: {"holding_registers": {0: 1}}})
            b = await modbus_device_factory({1: {"holding_registers": {0: 2}}}, strict=True)
            c = await modbus_device_factory(transport="udp")
            assert len({a.address, b.address, c.address}) == 3
            b.expect(fc=3)
            for tid, (dev, value) in enumerate([(a, 1), (b, 2)], 1):
                stream = await trio.open_tcp_stream(*dev.address)
                async with stream:
                    reply = await exchange(stream, mbap(tid, bytes.fromhex("03 0000 0001")))
                assert reply[-2:] == bytes([0, value])
            note("factory", [a.address, b.address])

        async def test_each_is_verified(modbus_device_factory):
            a = await modbus_device_factory()
            b = await modbus_device_factory()
            a.expect(fc=5, address=1)
            b.expect(fc=6, address=2)

        from trio_modbus import ConfigurationError

        async def test_a_bad_transport(modbus_device_factory):
            with pytest.raises(ConfigurationError, match="transport='serial'"):
                await modbus_device_factory(transport="serial")
        """
    )
    result = tester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*expected fc=5, address=1 1 time(s): got 0*", "*expected fc=6, address=2 1 time(s)*"]
    )
    assert all(refused(address) for address in noted(tester, "factory"))  # type: ignore[attr-defined]


def test_a_memory_client_backing_off_5_s_runs_at_once_under_autojump_clock(
    tester: pytest.Pytester,
) -> None:
    tester.makepyfile(
        """
        from modbus_helpers import *

        async def read_with_backoff(stream, address):
            for attempt in range(10):
                reply = await exchange(stream, mbap(attempt, struct.pack(">BHH", 3, address, 1)))
                if reply[7:9] == b"\\x83\\x06":  # busy: try again in five seconds
                    await trio.sleep(5)
                    continue
                return int.from_bytes(reply[9:11], "big")
            raise AssertionError("still busy")

        @pytest.mark.modbus_device({1: {"holding_registers": {4: 77}}})
        async def test_backoff(modbus_memory, autojump_clock):
            device, stream = modbus_memory
            device.faults.add(faults.Busy(), times=3)
            start, real = trio.current_time(), time.monotonic()
            assert await read_with_backoff(stream, 4) == 77
            assert trio.current_time() - start == pytest.approx(15)
            assert time.monotonic() - real < 1
            assert [r.exception_code for r in device.recorder] == [6, 6, 6, None]
            assert device.recorder[0].transport == "memory"

        @pytest.mark.modbus_device(strict=True)
        async def test_strict(modbus_memory):
            device, stream = modbus_memory
            await exchange(stream, mbap(1, READ_0_2))

        @pytest.mark.modbus_device(transport="udp")
        async def test_no_udp(modbus_memory):
            pass
        """
    )
    result = tester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_strict*",
            "*unexpected: #1 03 ReadRegistersRequest(function_code=3, address=0, count=2)*",
            "*test_no_udp*",
            "*modbus_memory is a stream: transport='udp' is not possible",
        ]
    )
    assert result.duration < 10


def test_an_unmet_expectation_fails_at_teardown_with_the_table(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        from modbus_helpers import *

        async def test_async(modbus_device):
            modbus_device.expect(fc=6, address=3, value=9)
            stream = await trio.open_tcp_stream(*modbus_device.address)
            async with stream:
                await exchange(stream, mbap(1, READ_0_2))

        def test_thread(modbus_device_thread):
            modbus_device_thread.expect(fc=16)
        """
    )
    result = tester.runpytest("-p", "no:cacheprovider")
    # pytest-trio runs an async fixture's teardown inside the test: the test fails.
    # A synchronous fixture's teardown is pytest's own: an error at teardown.
    result.assert_outcomes(failed=1, passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_thread*",
            "E * the fake device's expectations:",
            "E *expected fc=16 1 time(s): got 0",
            "E *(nothing was received)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*_ test_async _*",
            "* AssertionError: the fake device's expectations:",
            "*   expected fc=6, address=3, value=9 1 time(s): got 0",
            "* received:",
            "*   seq      time conn   tid unit  request*",
            "*     1 * 1     1    1  03 ReadRegistersRequest(* → 03 04 00 00 00 00",
        ]
    )


def test_a_connection_left_open_warns_and_fails_under_w_error(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        from modbus_helpers import *

        LEFT_OPEN = []

        @pytest.fixture(autouse=True)
        def close_what_the_test_left():  # after the device fixtures' teardown
            yield
            for sock in LEFT_OPEN:
                sock.close()
            LEFT_OPEN.clear()

        async def test_async(modbus_device):
            stream = await trio.open_tcp_stream(*modbus_device.address)
            await exchange(stream, mbap(1, READ_0_2))
            LEFT_OPEN.append(socket.socket(fileno=stream.socket.detach()))  # closed without Trio

        async def test_async_autojump(modbus_device, autojump_clock):
            stream = await trio.open_tcp_stream(*modbus_device.address)
            await exchange(stream, mbap(1, READ_0_2))
            LEFT_OPEN.append(socket.socket(fileno=stream.socket.detach()))

        def test_thread(modbus_device_thread):
            sock = socket.create_connection(modbus_device_thread.address)
            sock.sendall(mbap(1, READ_0_2))
            sock.recv(256)
            LEFT_OPEN.append(sock)

        def test_closed_at_the_last_moment(modbus_device_thread):
            sync_exchange(modbus_device_thread.address, mbap(1, READ_0_2))
        """
    )
    result = tester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, warnings=3)
    result.stdout.fnmatch_lines(
        [
            "*ModbusConnectionLeakWarning: the test left 1 client connection(s) open to the "
            "fake device at ('127.0.0.1', *)*",
        ]
    )
    result = tester.runpytest("-p", "no:cacheprovider", "-W", "error::ResourceWarning")
    result.assert_outcomes(passed=2, failed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_thread*"])
    result = tester.runpytest("-p", "no:cacheprovider", "-W", "ignore::ResourceWarning")
    result.assert_outcomes(passed=4)


def test_a_sync_pymodbus_client_through_modbus_device_thread(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest
        from pymodbus.client import ModbusTcpClient

        @pytest.mark.modbus_device({1: {"holding_registers": {0: [10, 20]}}})
        def test_pymodbus(modbus_device_thread):
            device = modbus_device_thread
            host, port = device.address
            client = ModbusTcpClient(host, port=port, timeout=5)
            assert client.connect()
            try:
                assert client.read_holding_registers(0, count=2, device_id=1).registers == [10, 20]
                assert not client.write_register(5, 42, device_id=1).isError()
            finally:
                client.close()
            assert device.datastore[1].holding_registers[5] == 42
            device.recorder.assert_sequence([{"fc": 3}, {"fc": 6, "value": 42}], exact=True)
        """
    )
    tester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_shared_session_device_is_cleared_between_tests(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        from modbus_helpers import *

        SEEN = []

        def test_first(modbus_device_thread_shared):
            dev = modbus_device_thread_shared
            SEEN.append((id(dev), dev.address))
            dev.faults.add(faults.Busy(), function=3)
            dev.expect(fc=6, required=False)
            reply = sync_exchange(dev.address, mbap(1, READ_0_2))
            assert reply == mbap(1, bytes.fromhex("83 06"))
            dev.datastore[1].holding_registers[0] = 9

        def test_second(modbus_device_thread_shared):
            dev = modbus_device_thread_shared
            assert SEEN == [(id(dev), dev.address)]  # the same device, the same port
            assert len(dev.recorder) == 0 and not dev.faults.rules
            assert not dev.expectations.items
            reply = sync_exchange(dev.address, mbap(1, READ_0_2))
            assert reply == mbap(1, bytes.fromhex("03 04 0009 0000"))  # the data stays
            assert (dev.recorder[0].seq, dev.recorder[0].connection) == (1, 1)

        def test_unmet(modbus_device_thread_shared):
            modbus_device_thread_shared.expect(fc=1)

        def test_after_a_failure(modbus_device_thread_shared):
            assert not modbus_device_thread_shared.expectations.items
        """
    )
    result = tester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_unmet*", "*expected fc=1 1 time*"])


def test_modbus_raw_talks_to_modbus_device(tester: pytest.Pytester) -> None:
    pytest.importorskip("trio_modbus.testing.raw", reason="the raw client is not merged yet")
    tester.makepyfile(
        """
        import pytest
        from trio_modbus.testing import raw

        @pytest.mark.modbus_device({1: {"holding_registers": {0: [10, 20]}}})
        async def test_tcp(modbus_raw, modbus_device):
            reply = await modbus_raw.request(raw.read_holding_registers(0, 2))
            assert reply.registers() == [10, 20]
            modbus_device.recorder.assert_called(fc=3, times=1)

        @pytest.mark.modbus_device(transport="rtu_over_tcp")
        async def test_rtu_over_tcp(modbus_raw):
            reply = await modbus_raw.request(raw.read_holding_registers(0xFFFF, 2))
            assert reply.exception_code == 2

        @pytest.mark.modbus_device(transport="udp")
        async def test_udp(modbus_raw):
            reply = await modbus_raw.request(raw.read_coils(0, 3))
            assert reply.bits(3) == [False, False, False]
        """
    )
    tester.runpytest("-p", "no:cacheprovider", "-W", "error").assert_outcomes(passed=3)


# -- the serial line -----------------------------------------------------------------------------


@pytest.mark.slow  # socat
def test_a_pymodbus_serial_client_reads_modbus_serial_device(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest
        from pymodbus import FramerType
        from pymodbus.client import ModbusSerialClient

        @pytest.mark.modbus_device({1: {"holding_registers": {0: [10, 20]}}})
        def test_serial(modbus_serial_device):
            device, path = modbus_serial_device
            client = ModbusSerialClient(
                port=path, framer=FramerType.RTU, baudrate=19200, timeout=5
            )
            assert client.connect()
            try:
                assert client.read_holding_registers(0, count=2, device_id=1).registers == [10, 20]
            finally:
                client.close()
            device.recorder.assert_called(fc=3, transport="serial", times=1)

        def test_unmet(modbus_serial_device):
            modbus_serial_device[0].expect(fc=3)
        """
    )
    result = tester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_unmet*", "*expected fc=3 1 time*"])


def test_modbus_serial_device_skips_without_socat(
    tester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no socat
    tester.makepyfile(
        """
        def test_serial(modbus_serial_device):
            pass
        """
    )
    result = tester.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*modbus_serial_device needs socat, which is not on PATH*"])
