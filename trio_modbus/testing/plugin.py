"""A pytest plugin: fake Modbus devices as fixtures, checked when the test ends.

Installing trio_modbus registers it (the ``pytest11`` entry point ``trio_modbus``); ``-p
no:trio_modbus`` turns it off. The async fixtures need `pytest-trio
<https://pytest-trio.readthedocs.io>`_ (``trio_mode = true``, or ``@pytest.mark.trio``);
without it the plugin still loads, and the synchronous fixtures (``modbus_device_thread``,
``modbus_device_thread_shared``, ``modbus_serial_device``) work.

When a fixture ends it stops everything it started (servers, connections, threads, socat),
then checks the device:

* **Connections left open.** Client connections still open, after half a second for those
  closed at the last moment to be seen closed, are reported with a
  :class:`ModbusConnectionLeakWarning` naming how many: shown in the warnings summary, a
  failure under ``-W error`` (or ``filterwarnings = error``). A serial line has no client
  connections to leak.
* **Expectations.** :meth:`FakeDevice.verify() <trio_modbus.testing.FakeDevice.verify>` runs
  whatever the test's outcome: a required expectation that was not met, or in strict mode a
  request that matched none, fails with the table of what arrived. With pytest-trio an
  async fixture's teardown runs inside the test, so this is reported as the test's failure;
  for the synchronous fixtures, as an error at teardown.

The module imports only pytest and the standard library, and its parent packages load their
names lazily: a pytest session that uses no fixture of it never imports Trio or the servers.
"""

from __future__ import annotations

import contextlib
import inspect
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import trio

    from trio_modbus.server import BaseServer
    from trio_modbus.testing import DeviceThread, FakeDevice
    from trio_modbus.testing.raw import RawClient

__all__ = [
    "ModbusConnectionLeakWarning",
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
    "pytest_configure",
]

# The transports the marker and the configuration fixtures may name, and what serves each.
_TRANSPORTS = ("tcp", "udp", "rtu_over_tcp")
_SERVE = {
    "tcp": "serve_tcp",
    "udp": "serve_udp",
    "rtu_over_tcp": "serve_rtu_over_tcp",
    "tls": "serve_tls",
}
_SHOW_LEAKS = f"always::{__name__}.ModbusConnectionLeakWarning"
# How long a teardown waits (real time) for connections a client closed to be noticed.
_PATIENCE = 0.5
_PTY_WAIT = 5.0  # seconds socat has to make both ends of a pty pair


class ModbusConnectionLeakWarning(ResourceWarning):
    """A test left client connections open to a fixture's fake device.

    Emitted when the fixture ends, naming how many; ``-W error`` makes it a failure.
    """


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``modbus_device`` marker, and show :class:`ModbusConnectionLeakWarning`.

    The marker is registered so that ``--strict-markers`` accepts it. Python ignores
    ``ResourceWarning`` by default; the plugin puts ``always::ModbusConnectionLeakWarning``
    first in the ``filterwarnings`` setting, so that every other filter (the configuration's,
    ``-W``, ``@pytest.mark.filterwarnings``) overrides it: ``-W error`` still makes a leak a
    failure and ``ignore::ResourceWarning`` still hides it. Not when Python itself was given
    warning options (``python -W ...``, ``PYTHONWARNINGS``): those decide.

    Args:
        config: pytest's configuration.
    """
    if not sys.warnoptions:
        config.getini("filterwarnings").insert(0, _SHOW_LEAKS)
    config.addinivalue_line(
        "markers",
        "modbus_device(units=None, *, sparse=False, strict=False, identity=None, "
        "context=None, transport='tcp'): the fake device of the trio_modbus fixtures for "
        "this test, over what modbus_device_config gives; transport is 'tcp', 'udp' or "
        "'rtu_over_tcp'.",
    )


# -- configuration -------------------------------------------------------------------------------


@pytest.fixture
def modbus_device_config() -> dict[str, Any]:
    """The keyword arguments of the fixtures' :class:`~trio_modbus.testing.FakeDevice`.

    Override it (in a ``conftest.py``, a module or a class) to give every device there its
    data; the ``modbus_device`` marker extends or overrides it for one test. The default,
    ``{}``, is unit 1 with every table zero. Besides the arguments of ``FakeDevice``
    (``units``, ``context``, ``sparse``, ``identity``, ``strict``) it may name the
    ``transport``: ``"tcp"`` (the default), ``"udp"`` or ``"rtu_over_tcp"``.

    Example::

        @pytest.fixture
        def modbus_device_config():
            return {"units": {1: {"holding_registers": {0: [10, 20]}}}}

        @pytest.mark.modbus_device(strict=True, transport="rtu_over_tcp")
        async def test_strict_over_rtu(modbus_device): ...

    Returns:
        The arguments, a dict the fixtures copy before they add to it.
    """
    return {}


@pytest.fixture(scope="session")
def modbus_device_session_config() -> dict[str, Any]:
    """The keyword arguments of ``modbus_device_thread_session``'s device (session scope).

    As ``modbus_device_config`` (``transport`` included), for the device a whole session
    shares; override it with a session-scoped fixture. Markers do not apply to it.

    Returns:
        The arguments, ``{}`` by default (unit 1, every table zero).
    """
    return {}


def _settings(
    config: Mapping[str, Any], request: pytest.FixtureRequest | None
) -> tuple[dict[str, Any], str]:
    """FakeDevice's arguments and the transport: the config, then the test's markers."""
    merged = dict(config)
    if request is not None:
        # iter_markers gives the closest first: apply the farthest first, the closest last.
        for mark in reversed(list(request.node.iter_markers("modbus_device"))):
            if len(mark.args) > 1:
                pytest.fail(
                    "@pytest.mark.modbus_device takes one positional argument (units), "
                    f"got {len(mark.args)}",
                    pytrace=False,
                )
            if mark.args:
                merged["units"] = mark.args[0]
            merged.update(mark.kwargs)
    transport = merged.pop("transport", "tcp")
    if transport not in _TRANSPORTS:
        pytest.fail(
            f"modbus_device transport={transport!r}; allowed: {', '.join(_TRANSPORTS)}",
            pytrace=False,
        )
    from trio_modbus.testing import FakeDevice

    try:
        inspect.signature(FakeDevice).bind(**merged)
    except TypeError as exc:  # an argument FakeDevice does not take
        problem = str(exc)
    else:
        return merged, transport
    pytest.fail(f"modbus_device arguments {sorted(merged)}: {problem}", pytrace=False)


def _new_device(arguments: Mapping[str, Any]) -> FakeDevice:
    from trio_modbus.testing import FakeDevice

    return FakeDevice(**arguments)


@pytest.fixture
def _modbus_settings(
    request: pytest.FixtureRequest, modbus_device_config: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """The test's device arguments and transport, checked at setup.

    A plain fixture: a mistake is an error at setup, for the async fixtures too.
    """
    return _settings(modbus_device_config, request)


# -- teardown checks -----------------------------------------------------------------------------


def _leak_message(count: int, device: FakeDevice) -> str:
    return (
        f"the test left {count} client connection(s) open to the fake device at "
        f"{device.address!r}; close each client before the test ends"
    )


def _check(devices: list[tuple[FakeDevice, int, str]]) -> None:
    """Warn of leaked connections, then verify every device (all of them, failing once)."""
    __tracebackhide__ = True
    problems: list[str] = []
    try:
        for _, leaked, message in devices:
            if leaked:
                warnings.warn(message, ModbusConnectionLeakWarning, stacklevel=2)
    finally:
        for device, _, _ in devices:
            try:
                device.verify()
            except AssertionError as exc:
                problems.append(str(exc))
        if problems:
            raise AssertionError("\n\n".join(problems))


async def _settle(server: BaseServer) -> int:
    """Connections still open once the server had a moment to see closed ones end.

    It waits with ``wait_all_tasks_blocked``, whose cushion is real time: under
    ``autojump_clock`` the virtual clock does not move meanwhile (an idle timeout does not
    close a leaked connection before it is counted).
    """
    import trio.testing

    deadline = time.monotonic() + _PATIENCE
    await trio.testing.wait_all_tasks_blocked()
    while server.statistics.connections_active and time.monotonic() < deadline:
        await trio.testing.wait_all_tasks_blocked(cushion=0.01)
    return server.statistics.connections_active


def _settle_thread(thread: DeviceThread) -> int:
    """As ``_settle``, for a device served from a thread (polled from this one)."""
    server = thread.server
    if server is None:  # pragma: no cover - the thread serves once started
        return 0
    deadline = time.monotonic() + _PATIENCE
    while server.statistics.connections_active and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.statistics.connections_active


# -- devices served in the test's Trio run -------------------------------------------------------


class _Devices:
    """The devices a test's async fixtures serve, each in a task of one nursery."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.served: list[tuple[FakeDevice, BaseServer]] = []

    async def serve(self, device: FakeDevice, transport: str, options: dict[str, Any]) -> None:
        server: BaseServer = await self.nursery.start(_serve, device, transport, options)
        self.served.append((device, server))


async def _serve(
    device: FakeDevice,
    transport: str,
    options: dict[str, Any],
    *,
    task_status: trio.TaskStatus[BaseServer],
) -> None:
    import trio

    async with getattr(device, _SERVE[transport])(**options) as server:
        task_status.started(server)
        await trio.sleep_forever()


@pytest.fixture
async def _modbus_devices() -> AsyncIterator[_Devices]:
    """The nursery the async device fixtures serve in; checks each device at teardown."""
    import trio

    async with trio.open_nursery() as nursery:
        devices = _Devices(nursery)
        yield devices
        found = []
        for device, server in devices.served:
            leaked = await _settle(server)
            found.append((device, leaked, _leak_message(leaked, device)))
        nursery.cancel_scope.cancel()
    _check(found)


@pytest.fixture
async def modbus_device(
    _modbus_settings: tuple[dict[str, Any], str], _modbus_devices: _Devices
) -> FakeDevice:
    """A fake device serving on 127.0.0.1 (a free port) for the test (needs pytest-trio).

    Configured by ``modbus_device_config`` and the ``modbus_device`` marker (transport
    ``"tcp"`` by default, ``"udp"`` or ``"rtu_over_tcp"``). ``device.address`` is where it
    serves: ``(host, port)``.

    At teardown it stops serving, warns (:class:`ModbusConnectionLeakWarning`) of client
    connections the test left open, and calls ``device.verify()``.

    Example::

        async def test_read(modbus_device):
            modbus_device.datastore[1].holding_registers[0] = 7
            client = MyClient(*modbus_device.address)
            assert await client.read(0) == 7
            modbus_device.recorder.assert_called(fc=3, address=0)

    Returns:
        The serving :class:`~trio_modbus.testing.FakeDevice`.
    """
    arguments, transport = _modbus_settings
    device = _new_device(arguments)
    await _modbus_devices.serve(device, transport, {})
    return device


@pytest.fixture
async def modbus_device_factory(
    _modbus_devices: _Devices,
) -> Callable[..., Awaitable[FakeDevice]]:
    """Serve as many fake devices as the test needs (needs pytest-trio).

    ``await modbus_device_factory(units=None, *, transport="tcp", context=None,
    sparse=False, identity=None, strict=False, **serve_options)`` makes a device and serves
    it on 127.0.0.1 (a free port unless ``port=`` says otherwise) until the test ends;
    ``transport`` may also be ``"udp"``, ``"rtu_over_tcp"`` or ``"tls"`` (give
    ``certfile``/``keyfile`` or ``ssl_context``), and ``serve_options`` go to the matching
    ``serve_*`` method. ``modbus_device_config`` and the marker do not apply: each call says
    what it wants. An unknown transport raises ``ConfigurationError``.

    At teardown every device is stopped, connections left open are warned of
    (:class:`ModbusConnectionLeakWarning`) and every device is verified; the failures of
    several devices are reported together.

    Example::

        async def test_failover(modbus_device_factory):
            primary = await modbus_device_factory({1: {"holding_registers": {0: 1}}})
            backup = await modbus_device_factory({1: {"holding_registers": {0: 2}}})
            ...

    Returns:
        The factory, an async function returning a serving
        :class:`~trio_modbus.testing.FakeDevice`.
    """

    async def factory(
        units: Any = None,
        *,
        transport: str = "tcp",
        context: Any = None,
        sparse: bool = False,
        identity: Any = None,
        strict: bool = False,
        **serve_options: Any,
    ) -> FakeDevice:
        if transport not in _SERVE:
            from trio_modbus import ConfigurationError

            raise ConfigurationError(f"transport={transport!r}; allowed: {', '.join(_SERVE)}")
        device = _new_device(
            {
                "units": units,
                "context": context,
                "sparse": sparse,
                "identity": identity,
                "strict": strict,
            }
        )
        await _modbus_devices.serve(device, transport, serve_options)
        return device

    return factory


@pytest.fixture
async def modbus_memory(
    _modbus_settings: tuple[dict[str, Any], str],
) -> AsyncIterator[tuple[FakeDevice, trio.abc.Stream]]:
    """A fake device and a client stream connected to it in memory (needs pytest-trio).

    No socket is involved, so it works under ``autojump_clock``: a client that sleeps five
    seconds before a retry finishes at once in real time. Configured as ``modbus_device``;
    the transport only chooses the framing (``"tcp"``: MBAP, ``"rtu_over_tcp"``: RTU;
    ``"udp"`` is refused).

    At teardown the stream is closed and ``device.verify()`` is called (the fixture owns the
    only connection, so there is no leak to report).

    Example::

        async def test_backoff(modbus_memory, autojump_clock):
            device, stream = modbus_memory
            device.faults.add(faults.Busy(), times=2)
            client = MyClient(stream)
            assert await client.read_with_retry(0) == 0

    Yields:
        The :class:`~trio_modbus.testing.FakeDevice` and the client's ``trio.abc.Stream``, as
        a pair.
    """
    arguments, transport = _modbus_settings
    if transport == "udp":
        pytest.fail("modbus_memory is a stream: transport='udp' is not possible", pytrace=False)
    device = _new_device(arguments)
    framer = "rtu" if transport == "rtu_over_tcp" else "socket"
    async with device.connect_memory(framer=framer) as stream:
        yield device, stream
    device.verify()


@pytest.fixture
async def modbus_raw(
    _modbus_settings: tuple[dict[str, Any], str], modbus_device: FakeDevice
) -> AsyncIterator[RawClient]:
    """A raw client (:mod:`trio_modbus.testing.raw`) connected to ``modbus_device``.

    Its framing follows the device's transport (MBAP over TCP or UDP, RTU over TCP); it is
    closed before the device's teardown checks, so it is not a leak.

    Example::

        async def test_raw(modbus_raw, modbus_device):
            reply = await modbus_raw.request(raw.read_holding_registers(0, 2))
            assert reply.registers() == [0, 0]

    Yields:
        The connected :class:`~trio_modbus.testing.raw.RawClient`.
    """
    from trio_modbus.testing import raw

    transport = _modbus_settings[1]
    address = modbus_device.address
    if transport == "udp":
        opened = raw.connect_udp(address, framer="socket")
    else:
        opened = raw.connect(address, framer="rtu" if transport == "rtu_over_tcp" else "socket")
    async with opened as client:
        yield client


# -- devices served from a thread ----------------------------------------------------------------


@contextlib.contextmanager
def _in_thread(device: FakeDevice, transport: str, **options: Any) -> Iterator[DeviceThread]:
    """Serve ``device`` from a thread; at the end, stop it and check it."""
    __tracebackhide__ = True
    thread = device.start_in_thread(transport, **options)
    leaked, message = 0, ""
    try:
        yield thread
        if transport != "serial":  # a serial line is the device's own, never a client's
            leaked = _settle_thread(thread)
            message = _leak_message(leaked, device)
    finally:
        thread.stop()
    _check([(device, leaked, message)])


@pytest.fixture
def modbus_device_thread(_modbus_settings: tuple[dict[str, Any], str]) -> Iterator[FakeDevice]:
    """A fake device served from a thread of its own, for synchronous and asyncio clients.

    A plain fixture: it needs no pytest-trio. Configured as ``modbus_device``;
    ``device.address`` is ``(host, port)`` on 127.0.0.1. The device runs its own Trio loop
    on the **real clock**: a Trio test that uses ``autojump_clock`` must not wait for it with
    ``trio.sleep`` (virtual time races ahead while the thread has not answered); use
    ``modbus_memory`` there. At teardown: as ``modbus_device``.

    Example::

        def test_sync_client(modbus_device_thread):
            host, port = modbus_device_thread.address
            client = ModbusTcpClient(host, port=port)
            ...

    Yields:
        The serving :class:`~trio_modbus.testing.FakeDevice`.
    """
    arguments, transport = _modbus_settings
    device = _new_device(arguments)
    with _in_thread(device, transport):
        yield device


@pytest.fixture(scope="session")
def _modbus_session_thread(
    modbus_device_session_config: dict[str, Any],
) -> Iterator[tuple[FakeDevice, DeviceThread]]:
    """The session's device and the thread serving it."""
    arguments, transport = _settings(modbus_device_session_config, None)
    device = _new_device(arguments)
    with _in_thread(device, transport) as thread:
        yield device, thread


@pytest.fixture(scope="session")
def modbus_device_thread_session(
    _modbus_session_thread: tuple[FakeDevice, DeviceThread],
) -> FakeDevice:
    """One fake device, served from a thread, for the whole session.

    Tests use it through ``modbus_device_thread_shared``, which clears it for each test and
    checks it after; this fixture holds the device, configured by
    ``modbus_device_session_config``. It has the real-clock hazard of
    ``modbus_device_thread``. When the session ends it is stopped and checked (leaked
    connections, ``verify()``), which catches what a test that used it directly left.

    Returns:
        The serving :class:`~trio_modbus.testing.FakeDevice`.
    """
    return _modbus_session_thread[0]


@pytest.fixture
def modbus_device_thread_shared(
    _modbus_session_thread: tuple[FakeDevice, DeviceThread],
) -> Iterator[FakeDevice]:
    """The session's thread-served device, cleared for this test and checked after it.

    Cheaper than a device per test: the thread and its port last the session. Before the
    test its recorder, faults and expectations are cleared, and request and connection
    numbers restart at 1; after it, connections left open are warned of and ``verify()`` is
    called, then it is cleared again. Its **data is shared**: what one test writes, the next
    reads; a test that needs known values writes them through ``device.datastore`` first.
    Not for tests run in parallel within one process. It has the real-clock hazard of
    ``modbus_device_thread``.

    Yields:
        The session's :class:`~trio_modbus.testing.FakeDevice` (``modbus_device_thread_session``).
    """
    device, thread = _modbus_session_thread
    device.reset()
    yield device
    try:
        leaked = _settle_thread(thread)
        _check([(device, leaked, _leak_message(leaked, device))])
    finally:
        device.reset()


# -- a serial line -------------------------------------------------------------------------------


@contextlib.contextmanager
def _pty_pair(socat: str) -> Iterator[tuple[str, str]]:
    """Two linked pseudo-terminals made by socat: ``(server end, client end)`` paths."""
    with tempfile.TemporaryDirectory(prefix="trio_modbus-pty-") as directory:
        server, client = f"{directory}/server", f"{directory}/client"
        log = Path(directory, "socat.log")
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [socat, "-d", "-d",
                 f"pty,raw,echo=0,link={server}", f"pty,raw,echo=0,link={client}"],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + _PTY_WAIT
                while not (Path(server).exists() and Path(client).exists()):
                    if process.poll() is not None or time.monotonic() > deadline:
                        text = log.read_text(errors="replace").strip()
                        pytest.fail(f"socat made no pty pair: {text}", pytrace=False)
                    time.sleep(0.01)
                yield server, client
            finally:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:  # pragma: no cover - socat ends on SIGTERM
                    process.kill()
                    process.wait()


@pytest.fixture
def modbus_serial_device(
    _modbus_settings: tuple[dict[str, Any], str],
) -> Iterator[tuple[FakeDevice, str]]:
    """A fake device serving RTU on one end of a socat pty pair; the test gets the other.

    Skipped when ``socat`` is not on ``PATH``. The device is served from a thread (any
    client works: synchronous, asyncio, Trio), so it has the real-clock hazard of
    ``modbus_device_thread``. Configured as ``modbus_device``, except that the transport is
    the serial line (RTU, whatever the configuration says). At teardown the device is
    stopped, then socat, and ``device.verify()`` is called (a serial line has no client
    connections to leak).

    Example::

        def test_serial(modbus_serial_device):
            device, path = modbus_serial_device
            client = ModbusSerialClient(port=path, framer=FramerType.RTU, baudrate=19200)
            ...

    Yields:
        The :class:`~trio_modbus.testing.FakeDevice` and the path of the client's end of the
        line, as a pair.
    """
    socat = shutil.which("socat")
    if socat is None:
        pytest.skip("modbus_serial_device needs socat, which is not on PATH")
    arguments = _modbus_settings[0]
    device = _new_device(arguments)
    with (
        _pty_pair(socat) as (server_end, client_end),
        _in_thread(device, "serial", port=server_end),
    ):
        yield device, client_end
