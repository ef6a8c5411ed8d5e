"""ModbusSimulatorServer: pymodbus's simulator API, on Trio, with its HTTP side."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import sniffio
import trio

from trio_modbus._errors import ConfigurationError

if TYPE_CHECKING:
    from trio_modbus.testing import FakeDevice

    from ._config import DeviceConfig, ServerConfig, SimulatorConfig
    from ._datastore import SimulatorData
    from ._extensions import GeneratorConfig

__all__ = ["ModbusSimulatorServer"]

log = logging.getLogger("trio_modbus.simulator")

DEFAULT_HTTP_HOST = "localhost"  # the seed's default (pymodbus binds 0.0.0.0)
DEFAULT_HTTP_PORT = 8080  # the seed's default
STOP_GRACE = 2.0  # seconds open HTTP responses (event streams) get to end when it stops


class ModbusSimulatorServer:
    """A simulated Modbus device from a pymodbus simulator JSON file, with an HTTP API.

    The constructor reads and checks the configuration and needs no running loop. Run it
    under Trio (``async with``, ``await nursery.start(sim.run_forever)`` or ``await
    sim.run_forever()``) or under asyncio (``await sim.run_forever()``, as pymodbus's
    example does). It reports started once both the Modbus listener and the HTTP server are
    bound; ``modbus_address`` and ``http_address`` then hold where (port 0 picks a free one).

    Args:
        modbus_server: The ``server_list`` entry to run; None: the only (or first) one.
        modbus_device: The ``device_list`` entry to simulate; None: the only (or first) one.
        http_host: Where the HTTP API listens (``"localhost"``).
        http_port: Its port (8080); 0 picks a free one.
        json_file: The configuration file; None: the built-in default (Modbus/TCP on
            127.0.0.1:5020).
        custom_actions_module: A dotted module name or a ``.py`` path whose
            ``custom_actions_dict`` adds actions.
        web_app_path: A folder whose files override the web pages' own, file by file:
            ``templates/<name>.html`` and ``static/<name>``.
        config: The configuration as a mapping, instead of ``json_file``.
        log_file: A file to append the log of the ``trio_modbus`` loggers to while the
            simulator runs, besides the log endpoint (which keeps the last 1000 records).
            Which records reach them is the logging configuration's choice (the
            ``trio_modbus`` logger's level).
        seed: Seed of the random actions.
        token: A bearer token the HTTP API requires (``Authorization: Bearer <token>``).
        allow_unauthenticated: Serve HTTP beyond the loopback interface without a token
            (refused otherwise: anyone on the network could change the device).
        modbus_port: Replaces the selected server's ``port`` (0: a free one; for a serial
            server, the device path).

    Attributes:
        data: The selected device's :class:`~trio_modbus.simulator.SimulatorData`.
        units: Each served unit id's data (``trio_modbus.units``); without that key,
            ``{device_id: data}``, or ``{0: data}`` when every unit id reaches the device.
        unit: The selected device's unit id with ``trio_modbus.units``, else None.
        device: The :class:`~trio_modbus.testing.FakeDevice` serving them (its call log and
            fault rules).
        scenario_started_at: When ``trio_modbus.scenario`` started (Trio's clock), or None.
        scenario_done: The scenario steps run so far, each index with its time in seconds
            from the scenario's start.

    Raises:
        ConfigurationError: The configuration is unreadable or wrong (the JSON path and the
            valid choices are named), or both ``json_file`` and ``config`` were given.
    """

    def __init__(
        self,
        modbus_server: str | None = None,
        modbus_device: str | None = None,
        http_host: str = DEFAULT_HTTP_HOST,
        http_port: int = DEFAULT_HTTP_PORT,
        json_file: str | os.PathLike[str] | None = None,
        custom_actions_module: str | os.PathLike[str] | None = None,
        web_app_path: str | os.PathLike[str] | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        log_file: str | os.PathLike[str] | None = None,
        seed: int | None = None,
        token: str | None = None,
        allow_unauthenticated: bool = False,
        modbus_port: int | str | None = None,
    ) -> None:
        from ._config import load_config

        if json_file is not None and config is not None:
            raise ConfigurationError("give json_file or config, not both")
        if not isinstance(http_port, int) or not 0 <= http_port <= 65535:
            raise ConfigurationError(f"http_port={http_port!r}; give 0..65535 (0: a free port)")
        self._source: Any = config if config is not None else json_file
        self.config = load_config(self._source, custom_actions_module=custom_actions_module)
        if token is None:
            token = self.config.token
        if token is None and not allow_unauthenticated and not _loopback(http_host):
            raise ConfigurationError(
                f"http_host={http_host!r} is reachable from the network: give token= (clients "
                "then send Authorization: Bearer <token>), or allow_unauthenticated=True"
            )
        self.server_config, self.device_config = self.config.select(modbus_server, modbus_device)
        self.unit = _selected_unit(self.config, modbus_device)
        if self.unit is not None:
            self.device_config = self.config.devices[self.config.units[self.unit]]
        if modbus_port is not None:
            network = self.server_config.comm != "serial"
            if network and (not isinstance(modbus_port, int) or not 0 <= modbus_port <= 65535):
                raise ConfigurationError(
                    f"modbus_port={modbus_port!r}; give 0..65535 (0: a free port)"
                )
            self.server_config = dataclasses.replace(self.server_config, port=modbus_port)
        self.modbus_port = modbus_port
        self.http_host = http_host
        self.http_port = http_port
        self.web_app_path = web_app_path
        self.log_file = log_file
        self.seed = seed
        from trio_modbus.testing import add_faults

        from ._http import LogBuffer

        self.units, self.data, self.device = self._build()
        self.token = token
        add_faults(list(self.config.faults), self.device.faults)
        self.log_buffer = LogBuffer()
        self.modbus_server: Any = None
        self.modbus_address: Any = None
        self.http_address: tuple[str, int] | None = None
        self.started_at: float | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread: int | None = None
        self._scope: trio.CancelScope | None = None
        self._stopping: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        self._modbus_scope: trio.CancelScope | None = None
        self._generators_scope: trio.CancelScope | None = None
        self._modbus_done: trio.Event | None = None
        self._listener_lock = trio.Lock()  # restart, stop_listener, start_listener: one at a time
        self.scenario_done: dict[int, float] = {}
        self.scenario_started_at: float | None = None
        self._stop_early = False
        self._running = False
        self._ended = threading.Event()
        self._ended_in_run: trio.Event | None = None
        self._ended.set()

    def _build(self) -> tuple[dict[int, SimulatorData], SimulatorData, FakeDevice]:
        """Each unit's data, the selected one's, and the FakeDevice serving them."""
        from trio_modbus.datastore.context import ModbusServerContext
        from trio_modbus.testing import FakeDevice

        from ._datastore import SimulatorData, build_server_context

        def make(device_config: DeviceConfig) -> SimulatorData:
            return SimulatorData(
                device_config,
                custom_actions=self.config.custom_actions,
                clock=_clock,
                seed=self.seed,
            )

        context: ModbusServerContext
        if self.config.units:
            units = {
                unit: make(self.config.devices[name]) for unit, name in self.config.units.items()
            }
            assert self.unit is not None
            data = units[self.unit]
            context = ModbusServerContext(
                devices={unit: each.context() for unit, each in units.items()}, single=False
            )
        else:
            data = make(self.device_config)
            unit = self.server_config.device_id
            units = {0 if unit is None else unit: data}
            context = build_server_context(data, self.server_config)
        device = FakeDevice(
            context=context,
            identity=self.server_config.make_identity(),
            ignore_missing_devices=self.server_config.ignore_missing_devices,
        )
        for each in units.values():
            each.write_hook = _write_actions(
                self.config.on_write, each, device, self._schedule_listener
            )
        return units, data, device

    def build_html(self, html_template: str, json_data: Mapping[str, Any]) -> str:
        """Render an HTML template text with ``json_data``, every value HTML-escaped.

        The template is Jinja2 (``{{ name }}``, ``{% for row in rows %}``), the engine of the
        web pages (whose templates a ``web_app_path`` folder overrides file by file).

        Args:
            html_template: The template's text.
            json_data: The names it uses (a page's JSON answer, for instance).

        Returns:
            The HTML.

        Raises:
            ValueError: The template is malformed, or uses a name ``json_data`` lacks.
        """
        from ._web import build_html

        return build_html(html_template, json_data)

    def unit_data(self, unit: int | None = None) -> SimulatorData:
        """The data a unit id reaches, as the Modbus server looks it up.

        Args:
            unit: A unit id; None takes the selected device (``data``).

        Returns:
            The unit's :class:`~trio_modbus.simulator.SimulatorData`.

        Raises:
            KeyError: No device answers that unit id.
        """
        if unit is None:
            return self.data
        found = self.units.get(unit, self.units.get(0))  # 0: every unit id
        if found is None:
            raise KeyError(
                f"unit {unit} is not served; served: {', '.join(map(str, sorted(self.units)))}"
            )
        return found

    # -- running -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True from the start of ``run_forever`` until everything it opened is closed."""
        return self._running

    async def run_forever(
        self,
        only_start: bool = False,
        *,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run the simulator until ``stop()`` or cancellation.

        Args:
            only_start: pymodbus's option (asyncio only): return once started, the simulator
                running on in the background until ``stop()``. Under Trio, use ``await
                nursery.start(sim.run_forever)`` instead.
            task_status: Trio's: ``nursery.start`` gets the simulator once both the Modbus
                listener and the HTTP server are bound.

        Raises:
            RuntimeError: Already running, or ``only_start`` under Trio.
            OSError: A listener could not bind (nothing is left open).

        Cancellation:
            Cancelling it (its Trio scope, or the asyncio task awaiting it) closes the Modbus
            listener, every connection and the HTTP server before the cancellation goes on.
        """
        if sniffio.current_async_library() == "trio":
            if only_start:
                raise RuntimeError(
                    "only_start is for asyncio; under Trio, use "
                    "`await nursery.start(simulator.run_forever)`"
                )
            await self._run(task_status=task_status)
            return
        from trio_modbus.server._compat._hosting import run_in_trio

        if not only_start:
            await run_in_trio(self._run)
            return
        import asyncio

        self._background = asyncio.ensure_future(run_in_trio(self._run))
        while not (self.started_at is not None or self._background.done()):
            await asyncio.sleep(0.005)
        if self._background.done():
            self._background.result()  # raises what stopped it

    async def _run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        if self._running:
            raise RuntimeError("the simulator is already running")
        self._running = True
        self._ended.clear()
        handlers: list[logging.Handler] = [self.log_buffer]
        if self.log_file is not None:
            handlers.append(logging.FileHandler(self.log_file, encoding="utf-8"))
            handlers[-1].setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
        package_log = logging.getLogger("trio_modbus")
        for handler in handlers:
            package_log.addHandler(handler)
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.get_ident()
        self._stopping = stopping = trio.Event()
        self._ended_in_run = ended_in_run = trio.Event()
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                if self._stop_early:
                    scope.cancel()
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    http_done = await self._start(nursery)
                    self.started_at = trio.current_time()
                    log.info(
                        "simulator: Modbus on %s, HTTP on http://%s:%d",
                        self.modbus_address,
                        *(self.http_address or ("?", 0)),
                    )
                    task_status.started(self)
                    await stopping.wait()
                    # The HTTP server stops accepting and lets open responses (event
                    # streams, which end on `stopping`) finish, then everything is cancelled.
                    with trio.move_on_after(STOP_GRACE):
                        await http_done.wait()
                    nursery.cancel_scope.cancel()
        finally:
            for handler in handlers:
                package_log.removeHandler(handler)
                handler.close()
            self._scope = self._nursery = self._modbus_scope = self._generators_scope = None
            self._stopping = self._modbus_done = None
            self._stop_early = False
            self.started_at = None
            self.modbus_address = self.http_address = None
            self._running = False
            self._ended.set()
            ended_in_run.set()

    async def _start(self, nursery: trio.Nursery) -> trio.Event:
        """Start the Modbus listener, then the HTTP server; both bound when it returns.

        Returns:
            An event set once the HTTP server has ended.
        """
        from hypercorn.config import Config
        from hypercorn.trio import serve as serve_http

        from ._http import build_app

        await self._start_modbus(nursery)
        config = Config()
        config.bind = [f"{self.http_host}:{self.http_port}"]
        config.accesslog = None
        config.errorlog = logging.getLogger("trio_modbus.simulator.http")
        config.graceful_timeout = STOP_GRACE
        http_done = trio.Event()
        stopping = self._stopping
        assert stopping is not None

        async def serve(*, task_status: trio.TaskStatus[Any]) -> None:
            try:
                await serve_http(
                    cast(Any, build_app(self, token=self.token)),
                    config,
                    shutdown_trigger=stopping.wait,
                    task_status=task_status,
                )
            finally:
                http_done.set()

        binds = await nursery.start(serve)
        host, _, port = binds[0].rpartition("://")[2].rpartition(":")
        self.http_address = (host.strip("[]"), int(port))
        return http_done

    async def _start_modbus(self, nursery: trio.Nursery) -> None:
        """Start the Modbus listener of the current device and its generators and scenario."""
        for data in self.units.values():
            data.mark_start()
        await self._bind_listener(nursery, self.server_config)
        self._start_generators(nursery)

    async def _bind_listener(self, nursery: trio.Nursery, server: ServerConfig) -> None:
        """Start the Modbus listener ``server`` describes, in a scope of its own."""
        from trio_modbus.server import BaseServer, serve_serial, serve_tcp, serve_tls, serve_udp

        options = server.server_options()
        for handled in ("identity", "ignore_missing_devices"):  # the device's, not the server's
            options.pop(handled, None)
        framer = options.pop("framer", None)
        framer_name = None if framer is None else str(getattr(framer, "value", framer))
        options.update(self.device.server_options(server.comm, framer_name))
        modbus: BaseServer
        if server.comm == "serial":
            modbus = serve_serial(port=str(server.port), **options)
        elif server.comm == "tls":
            modbus = serve_tls(**options)
        elif server.comm == "udp":
            modbus = serve_udp(**options)
        else:
            modbus = serve_tcp(**options)
        done = trio.Event()

        async def serve(*, task_status: trio.TaskStatus[Any]) -> None:
            try:
                with trio.CancelScope() as scope:
                    self._modbus_scope = scope
                    await modbus.serve(task_status=task_status)
            finally:
                done.set()

        self.modbus_server = await nursery.start(serve)
        self._modbus_done = done
        self.modbus_address = (
            server.port if server.comm == "serial" else self.modbus_server.address
        )

    @property
    def listening(self) -> bool:
        """Whether the Modbus listener is open.

        False before the start, after the end, and between :meth:`stop_listener` and
        :meth:`start_listener`.
        """
        return self._modbus_done is not None and not self._modbus_done.is_set()

    async def stop_listener(self) -> None:
        """Close the Modbus listener; HTTP, the generators and the scenario go on.

        Requests being answered get their replies, then every connection is closed (see
        :meth:`~trio_modbus.server.BaseServer.shutdown`); new clients are refused until
        :meth:`start_listener`. Does nothing when the listener is closed already. The
        scenario's ``"listener": "stop"`` and ``POST /api/v1/listener`` call it.

        Raises:
            RuntimeError: The simulator is not running.

        Cancellation:
            Cancelled while connections finish, the listener is closed at once.
        """
        if self._nursery is None or self.started_at is None:
            raise RuntimeError("the simulator is not running")
        async with self._listener_lock:
            server, done = self.modbus_server, self._modbus_done
            if server is None or done is None or done.is_set():
                return
            try:
                await server.shutdown(STOP_GRACE)
            finally:
                if self._modbus_scope is not None:
                    self._modbus_scope.cancel()
            await done.wait()
        log.info("simulator: Modbus listener on %s stopped", self.modbus_address)

    async def start_listener(self) -> None:
        """Open the Modbus listener again, at the address it had.

        Its port too, when the configuration asked for port 0, so that clients reconnect
        where they were. Does nothing when the listener is open.

        Raises:
            RuntimeError: The simulator is not running.
            OSError: The address cannot be bound (another program took the port).
        """
        nursery = self._nursery
        if nursery is None or self.started_at is None:
            raise RuntimeError("the simulator is not running")
        async with self._listener_lock:
            if self.listening:
                return
            server = self.server_config
            if server.comm != "serial" and self.modbus_address is not None:
                server = dataclasses.replace(server, port=self.modbus_address[1])
            await self._bind_listener(nursery, server)
        log.info("simulator: Modbus listener on %s started", self.modbus_address)

    def _start_generators(self, nursery: trio.Nursery) -> None:
        """Store each generator's first value, start its task and the scenario's (one scope)."""
        import random

        runs = []
        for spec in self.config.generators:
            for data in self.units.values():
                if data.device.name != spec.device:
                    continue
                seed = spec.parameters.get("seed")
                rng = random.Random(self.seed if seed is None else seed)
                data.set(spec.address, spec.value(0, rng), spec.type)
                runs.append((spec, data, rng))
        steps = self.config.scenario
        if not runs and not steps:
            return
        scope = self._generators_scope = trio.CancelScope()
        start = trio.current_time()
        served = self.device.requests  # the scenario counts requests from here

        async def generate(spec: GeneratorConfig, data: SimulatorData, rng: Any) -> None:
            tick = 0
            while True:
                tick += 1
                await trio.sleep_until(start + tick * spec.period)
                data.set(spec.address, spec.value(tick, rng), spec.type)

        async def run_all() -> None:
            with scope:
                async with trio.open_nursery() as generators:
                    for run in runs:
                        generators.start_soon(generate, *run)
                    if steps:
                        generators.start_soon(self._run_scenario, start, served)

        nursery.start_soon(run_all)

    async def _run_scenario(self, start: float, served: int) -> None:
        """Run ``trio_modbus.scenario``: the timed steps, and those counting requests."""
        steps = list(enumerate(self.config.scenario))
        timed = sorted((s for s in steps if "at" in s[1]), key=lambda step: step[1]["at"])
        counted = sorted(
            (s for s in steps if "after_requests" in s[1]),
            key=lambda step: step[1]["after_requests"],
        )
        self.scenario_done = {}
        self.scenario_started_at = start

        async def run_timed() -> None:
            for index, step in timed:
                await trio.sleep_until(start + step["at"])
                await self._run_step(index, step)

        async def run_counted() -> None:
            for index, step in counted:
                target = served + step["after_requests"]
                while self.device.requests < target:
                    await self.device.recorder.wait_changed()
                await self._run_step(index, step)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_timed)
            nursery.start_soon(run_counted)

    async def _run_step(self, index: int, step: Mapping[str, Any]) -> None:
        """Scenario step ``index``: its values and rules, then its listener action."""
        assert self.scenario_started_at is not None
        self.scenario_done[index] = trio.current_time() - self.scenario_started_at
        self._apply_step(step)
        await self._listener_action(step["listener"])

    def _schedule_listener(self, action: str) -> None:
        """Run a listener action soon, in the simulator's nursery (from a write's hook)."""
        if self._nursery is not None:
            self._nursery.start_soon(self._listener_action, action)

    async def _listener_action(self, action: str | None) -> None:
        """``"stop"`` or ``"start"`` the Modbus listener (None: nothing).

        A listener that cannot bind again is logged, and the simulator goes on without it.
        """
        try:
            if action == "stop":
                await self.stop_listener()
            elif action == "start":
                await self.start_listener()
        except OSError as exc:
            log.error("simulator: the Modbus listener cannot start again: %s", exc)

    def _apply_step(self, step: Mapping[str, Any]) -> None:
        """A step's values and rules: clear the fault rules, set the values, arm the rule."""
        from trio_modbus.testing import add_faults

        if step["clear_faults"]:
            self.device.faults.clear()
        for data in self.units.values():
            if data.device.name == step["device"]:
                for value in step["set"]:
                    data.set(value["address"], value["value"], value["type"])
        if step["fault"] is not None:
            add_faults([step["fault"]], self.device.faults)
        log.info("simulator: scenario step %s", {k: v for k, v in step.items() if v})

    async def restart(self) -> None:
        """Reload the configuration and rebind the Modbus listener (HTTP stays up).

        The file (or mapping) is read again and the same server and device entries are
        selected; the device starts from the file's values. A listener configured on port 0
        binds the port it had again, so that clients reconnect where they were. The call
        log, the fault rules and the request numbering carry over. Run it in the simulator's
        own Trio run (the HTTP API's ``POST /api/v1/restart`` does).

        Raises:
            ConfigurationError: The configuration no longer loads, or lacks the entries; the
                simulator goes on unchanged.
            RuntimeError: The simulator is not running.
            OSError: The listener could not bind again (the previous one is back).

        Cancellation:
            Cancelled while rebinding, the simulator may be left without a Modbus listener.
        """
        nursery = self._nursery
        if nursery is None or self.started_at is None:
            raise RuntimeError("the simulator is not running")
        async with self._listener_lock:  # one restart or listener change at a time
            await self._restart(nursery)

    def _pinned(self, server: ServerConfig) -> ServerConfig:
        """``server``, with the port the listener has when it asks for a free one (0)."""
        if server.comm != "serial" and server.port == 0 and self.modbus_address is not None:
            return dataclasses.replace(server, port=self.modbus_address[1])
        return server

    async def _restart(self, nursery: trio.Nursery) -> None:
        from ._config import load_config

        config = load_config(self._source, custom_actions=self.config.custom_actions)
        server_config, device_config = config.select(
            self.server_config.name, self.device_config.name
        )
        unit = _selected_unit(config, device_config.name)
        if self.modbus_port is not None:
            server_config = dataclasses.replace(server_config, port=self.modbus_port)
        server_config = self._pinned(server_config)
        previous = (
            self.config,
            self._pinned(self.server_config),
            self.device_config,
            self.unit,
            self.units,
            self.data,
            self.device,
        )
        self.config, self.server_config, self.device_config = config, server_config, device_config
        self.unit = unit
        try:
            units, data, device = self._build()
        except BaseException:
            self.config, self.server_config, self.device_config, self.unit = previous[:4]
            raise
        device.continue_from(self.device)
        await self._stop_modbus()
        self.units, self.data, self.device = units, data, device
        try:
            await self._start_modbus(nursery)
        except BaseException:
            (
                self.config,
                self.server_config,
                self.device_config,
                self.unit,
                self.units,
                self.data,
                self.device,
            ) = previous
            await self._start_modbus(nursery)
            raise
        log.info("simulator: restarted, Modbus on %s", self.modbus_address)

    async def _stop_modbus(self) -> None:
        if self._generators_scope is not None:
            self._generators_scope.cancel()
            self._generators_scope = None
        scope, done = self._modbus_scope, self._modbus_done
        if scope is not None and done is not None:
            scope.cancel()
            await done.wait()
        self.modbus_server = self.modbus_address = None

    def stop(self) -> _Stopped:
        """Stop the simulator: from any thread, at any time, any number of times.

        Returns at once; ``await simulator.stop()`` waits until everything is closed (as
        pymodbus's coroutine ``stop()`` does).
        """
        if not self._running:
            return _Stopped(self)
        stopping, token = self._stopping, self._token
        if self._scope is None or stopping is None:
            self._stop_early = True
        elif token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                if threading.get_ident() == self._thread:
                    stopping.set()
                else:
                    token.run_sync_soon(stopping.set)
        return _Stopped(self)

    @property
    def stopping(self) -> trio.Event | None:
        """Set once ``stop()`` was called (None when not running): open streams end on it."""
        return self._stopping

    async def __aenter__(self) -> ModbusSimulatorServer:
        self._context_nursery_manager = trio.open_nursery()
        nursery = await self._context_nursery_manager.__aenter__()
        try:
            await nursery.start(self._run)
        except BaseException as exc:
            await self._context_nursery_manager.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        self.stop()
        return await self._context_nursery_manager.__aexit__(exc_type, exc, traceback)


class _Stopped:
    """What ``stop()`` returns: ``await`` it to wait until the simulator has closed."""

    def __init__(self, simulator: ModbusSimulatorServer) -> None:
        self._simulator = simulator

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()

    async def _wait(self) -> None:
        simulator = self._simulator
        if simulator._ended.is_set():
            return
        if sniffio.current_async_library() == "trio":
            ended = simulator._ended_in_run
            if ended is not None and threading.get_ident() == simulator._thread:
                await ended.wait()  # the simulator's own run
            else:  # another thread's run: a worker thread waits for it
                await trio.to_thread.run_sync(simulator._ended.wait, abandon_on_cancel=True)
            return
        import asyncio

        while not simulator._ended.is_set():  # asyncio, hosting the run as a guest
            await asyncio.sleep(0.005)


def _write_actions(
    actions: Sequence[Mapping[str, Any]],
    data: SimulatorData,
    device: FakeDevice,
    listener: Callable[[str], None],
) -> Callable[[Sequence[int]], None] | None:
    """The ``write_hook`` running ``trio_modbus.on_write`` on one unit's data, or None.

    A Modbus write touching an entry's cell stores its ``set`` values (typed, in the
    device's word order), arms a copy of its ``fault`` rule on ``device`` and hands its
    ``listener`` action to ``listener`` (which runs it once the write is answered); the
    entries run in file order, once per write however many of their cells it touched.
    """
    mine = [action for action in actions if action["device"] == data.device.name]
    if not mine:
        return None

    def hook(touched: Sequence[int]) -> None:
        from trio_modbus.testing import add_faults

        cells = set(touched)
        for action in mine:
            if action["address"] not in cells:
                continue
            for value in action["set"]:
                try:
                    data.set(value["address"], value["value"], value["type"])
                except (ValueError, IndexError) as exc:  # e.g. a string longer than its cell
                    log.error(
                        "simulator: on_write of cell %d cannot set cell %d: %s",
                        action["address"],
                        value["address"],
                        exc,
                    )
            if action["fault"] is not None:
                add_faults([action["fault"]], device.faults)
            if action["listener"] is not None:
                listener(action["listener"])
            log.debug("simulator: a write to cell %d ran its on_write entry", action["address"])

    return hook


def _selected_unit(config: SimulatorConfig, modbus_device: str | None) -> int | None:
    """With ``trio_modbus.units``, the unit of the selected device (its first), else None.

    Raises:
        ConfigurationError: ``modbus_device`` is served at no unit.
    """
    if not config.units:
        return None
    if modbus_device is None:
        return next(iter(config.units))
    for unit, name in config.units.items():
        if name == modbus_device:
            return unit
    served = sorted(set(config.units.values()))
    raise ConfigurationError(
        f"modbus_device={modbus_device!r} is at no unit of trio_modbus.units;"
        f" valid: {', '.join(repr(name) for name in served)}"
    )


def _loopback(host: str) -> bool:
    """Whether ``host`` names the loopback interface only."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _clock() -> float:
    """Trio's clock in a Trio run (virtual in tests), else the monotonic clock."""
    try:
        return trio.current_time()
    except RuntimeError:
        return time.monotonic()
