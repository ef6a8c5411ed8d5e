"""The ``trio-modbus`` command: ``trio-modbus serve`` runs a server on an embedded datastore.

SIGTERM or SIGINT (Ctrl-C) stops the server gracefully: it stops accepting, lets in-flight
requests be answered for up to ``--grace`` seconds, logs that it stopped and exits 0. A second
signal during the grace period stops it at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from trio_modbus._framer_type import FramerType
from trio_modbus.datastore import (
    ModbusDeviceContext,
    ModbusDeviceIdentification,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)
from trio_modbus.server import DEFAULT_GRACE, DEFAULT_HOST

__all__ = ["DEFAULT_BLOCK_SIZE", "DEFAULT_GRACE", "default_context", "main"]

DEFAULT_PORT = 5020  # unprivileged stand-in for 502
DEFAULT_BLOCK_SIZE = 10_000  # addresses 0..9999 of each table in the embedded datastore

log = logging.getLogger("trio_modbus.cli")


def default_context(
    units: Sequence[int] = (), size: int = DEFAULT_BLOCK_SIZE
) -> ModbusServerContext:
    """The embedded datastore of ``trio-modbus serve``.

    Each device has ``size`` coils, discrete inputs, holding and input registers at protocol
    addresses 0..size-1 (zero-based: protocol address N is element N). Coils and holding
    registers start at 0; discrete input N is ``N % 2 == 1``; input register N holds N, so a
    client can tell it reached the right address.

    Args:
        units: Unit ids to serve, each with its own device; empty serves one device under every
            unit id.
        size: Addresses per table.
    """

    def device() -> ModbusDeviceContext:
        return ModbusDeviceContext(
            co=ModbusSequentialDataBlock(0, [False] * size),
            di=ModbusSequentialDataBlock(0, [bool(i % 2) for i in range(size)]),
            hr=ModbusSequentialDataBlock(0, [0] * size),
            ir=ModbusSequentialDataBlock(0, [i & 0xFFFF for i in range(size)]),
            zero_mode=True,
        )

    if not units:
        return ModbusServerContext(device(), single=True)
    return ModbusServerContext({unit: device() for unit in units}, single=False)


def _default_identity() -> ModbusDeviceIdentification:
    from trio_modbus import __version__

    identity = ModbusDeviceIdentification()
    identity.VendorName = "trio_modbus"
    identity.ProductCode = "TM"
    identity.MajorMinorRevision = __version__
    identity.ProductName = "trio_modbus server"
    return identity


def _grace(text: str) -> float:
    """Parse ``--grace``: a number of seconds, zero or more (``inf`` waits for every request).

    Raises:
        argparse.ArgumentTypeError: The value is not a number, is negative or is NaN; argparse
            reports it as a usage error naming the option.
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"must be a number of seconds, 0 or more, not {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trio-modbus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a Modbus server on an embedded datastore")
    serve.add_argument("--transport", choices=["tcp", "tls", "udp", "serial"], default="tcp")
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"interface (default {DEFAULT_HOST})")
    serve.add_argument("--port", type=int, default=None, help="TCP/UDP port (default 5020)")
    serve.add_argument(
        "--framer",
        choices=[f.value for f in FramerType],
        default=None,
        help="socket (MBAP; default for tcp/udp), rtu (default for serial), ascii, tls",
    )
    serve.add_argument("--device", help="serial device, e.g. /dev/ttyUSB0 (serial transport)")
    serve.add_argument("--baudrate", type=int, default=19200)
    serve.add_argument("--bytesize", type=int, default=8)
    serve.add_argument("--parity", default="N", choices=list("NEOMS"))
    serve.add_argument("--stopbits", type=float, default=1)
    serve.add_argument("--broadcast", action="store_true", help="serial: execute unit-0 writes")
    serve.add_argument("--certfile", help="TLS: server certificate (PEM)")
    serve.add_argument("--keyfile", help="TLS: server key (PEM)")
    serve.add_argument("--cafile", help="TLS: CA certificates for client certificates")
    serve.add_argument(
        "--require-client-cert", action="store_true", help="TLS: refuse clients without one"
    )
    serve.add_argument(
        "--authz",
        metavar="FILE",
        help=(
            "TLS: authorize every request by the role of the client's certificate with this "
            "policy (TOML or JSON; needs --cafile); reloaded on SIGHUP"
        ),
    )
    serve.add_argument("--crlfile", help="TLS: certificate revocation lists (PEM)")
    serve.add_argument(
        "--units",
        default="",
        help="comma-separated unit ids, each with its own device (default: one device, any id)",
    )
    serve.add_argument("--size", type=int, default=DEFAULT_BLOCK_SIZE, help="addresses per table")
    serve.add_argument(
        "--grace",
        type=_grace,
        default=DEFAULT_GRACE,
        metavar="SECONDS",
        help=(
            "on SIGTERM or Ctrl-C, seconds to let in-flight requests be answered before "
            f"closing (default {DEFAULT_GRACE:g}); a second signal stops at once"
        ),
    )
    serve.add_argument(
        "--data",
        metavar="FILE",
        help="TOML file of the data to serve instead of the embedded datastore ([unit.N.table])",
    )
    serve.add_argument(
        "--faults",
        metavar="FILE",
        help="TOML file of fault rules to apply ([[fault]] tables: action, match, lifetime)",
    )
    serve.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    simulate = sub.add_parser(
        "simulate",
        help="run pymodbus's JSON simulator (Modbus server and HTTP API)",
        description=(
            "Run a simulated device from a pymodbus simulator JSON file (the built-in default "
            "without one), with its HTTP API. The options are pymodbus's. With --http_port 0 "
            "the bound addresses are printed on stdout as one JSON line."
        ),
    )
    simulate.add_argument("--json_file", help="the simulator configuration (pymodbus's format)")
    simulate.add_argument("--modbus_server", help="the server_list entry to run")
    simulate.add_argument("--modbus_device", help="the device_list entry to simulate")
    simulate.add_argument("--http_host", default="localhost", help="HTTP interface (localhost)")
    simulate.add_argument("--http_port", type=int, default=8080, help="HTTP port (8080; 0: free)")
    simulate.add_argument(
        "--modbus_port", type=int, help="override the Modbus port of the file (0: a free one)"
    )
    simulate.add_argument(
        "--log",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="log level (info)",
    )
    simulate.add_argument("--log_file", help="also append the log to this file")
    simulate.add_argument(
        "--custom_actions_module", help="a module name or .py path with custom_actions_dict"
    )
    simulate.add_argument("--token", help="bearer token the HTTP API requires")
    simulate.add_argument(
        "--allow_unauthenticated",
        action="store_true",
        help="serve HTTP beyond loopback without a token",
    )
    return parser


def _simulator(args: argparse.Namespace) -> Any:
    """The simulator ``trio-modbus simulate`` runs (not started)."""
    from trio_modbus.simulator import ModbusSimulatorServer

    return ModbusSimulatorServer(
        modbus_server=args.modbus_server,
        modbus_device=args.modbus_device,
        http_host=args.http_host,
        http_port=args.http_port,
        json_file=args.json_file,
        custom_actions_module=args.custom_actions_module,
        log_file=args.log_file,
        modbus_port=args.modbus_port,
        token=args.token,
        allow_unauthenticated=args.allow_unauthenticated,
    )


async def _simulate_until_signalled(simulator: Any, announce: bool) -> None:
    """Run ``simulator`` until SIGTERM or SIGINT; announce where it serves if asked."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with simulator:
            if announce:
                print(
                    json.dumps(
                        {
                            "modbus": _jsonable(simulator.modbus_address),
                            "http": _jsonable(simulator.http_address),
                        }
                    ),
                    flush=True,
                )
            first = await anext(signals)
            log.info("received %s; stopping", _signal_name(first))
    log.info("stopped")


def _jsonable(address: Any) -> Any:
    return list(address) if isinstance(address, tuple) else address


def _server(args: argparse.Namespace) -> Any:
    from trio_modbus.server import serve_serial, serve_tcp, serve_tls, serve_udp

    if args.authz and args.transport != "tls":
        raise SystemExit("trio-modbus: --authz needs --transport tls")
    units = [int(u) for u in args.units.split(",") if u.strip()]
    identity = _default_identity()
    context: ModbusServerContext | None = None
    served: dict[str, Any] = {"identity": identity}
    if args.data or args.faults:
        served = _fake_device_options(args, units, identity)
    else:
        context = default_context(units, args.size)
    port = args.port if args.port is not None else DEFAULT_PORT
    if args.transport == "tcp":
        served.setdefault("framer", args.framer or "socket")
        return serve_tcp(context, host=args.host, port=port, **served)
    if args.transport == "udp":
        served.setdefault("framer", args.framer or "socket")
        return serve_udp(context, host=args.host, port=port, **served)
    if args.transport == "tls":
        served.pop("framer", None)
        if args.authz:
            if not args.cafile:
                raise SystemExit("trio-modbus: --authz needs --cafile (client certificates)")
            from trio_modbus.security import load_policy

            served["authorizer"] = load_policy(args.authz)
        return serve_tls(
            context,
            host=args.host,
            port=port,
            certfile=args.certfile,
            keyfile=args.keyfile,
            cafile=args.cafile,
            require_client_cert=args.require_client_cert or bool(args.authz),
            crlfile=args.crlfile,
            **served,
        )

    if not args.device:
        raise SystemExit("trio-modbus: --device is required with --transport serial")
    served.setdefault("framer", args.framer or "rtu")
    return serve_serial(
        context,
        port=args.device,
        baudrate=args.baudrate,
        bytesize=args.bytesize,
        parity=args.parity,
        stopbits=args.stopbits,
        broadcast=args.broadcast,
        **served,
    )


def _fake_device_options(
    args: argparse.Namespace, units: Sequence[int], identity: ModbusDeviceIdentification
) -> dict[str, Any]:
    """The server options of a fake device: ``--data`` (or the embedded data), ``--faults``."""
    from trio_modbus.testing import FakeDevice, load_faults, load_units

    if args.data:
        seed, sparse = load_units(args.data)
        device = FakeDevice(seed, sparse=sparse, identity=identity)
    else:
        device = FakeDevice(context=default_context(units, args.size), identity=identity)
    if args.faults:
        rules = load_faults(args.faults, device.faults)
        log.info("%d fault rule(s) from %s", len(rules), args.faults)
    framer = args.framer if args.framer != "tls" else None
    return device.server_options(args.transport, framer)


def _policy_reloader(server: Any, path: str) -> Callable[[], None]:
    """What SIGHUP does with ``--authz``: load the policy file again and swap it in.

    A file that does not load (a syntax error, a bad value) is logged at ERROR and the policy
    in force stays.
    """

    def reload() -> None:
        from trio_modbus.security import load_policy

        try:
            policy = load_policy(path)
        except ValueError as exc:
            log.error("SIGHUP: the policy was not reloaded, the old one stays: %s", exc)
            return
        server.set_authorizer(policy)
        log.info("SIGHUP: policy reloaded from %s", path)

    return reload


async def _serve_until_signalled(
    server: Any, grace: float, reload: Callable[[], None] | None = None
) -> None:
    """Run ``server`` until SIGTERM or SIGINT, then shut it down gracefully.

    The signal receiver is installed before the server starts, so that a signal sent as soon
    as the server reports its address is caught here rather than ending the process. The first
    signal starts ``server.shutdown(grace=grace)``: no new connections, idle ones closed,
    in-flight requests answered for up to ``grace`` seconds. A second signal meanwhile closes
    the server at once.

    Args:
        server: A trio_modbus server, not yet started.
        grace: Seconds the shutdown lets in-flight requests be answered.
        reload: Called on each SIGHUP (``--authz``: reload the policy); None: SIGHUP is not
            caught.
    """
    caught = [signal.SIGTERM, signal.SIGINT]
    if reload is not None:
        caught.append(signal.SIGHUP)
    with trio.open_signal_receiver(*caught) as signals:
        async with server:
            async for first in signals:
                if first != signal.SIGHUP or reload is None:
                    break
                reload()
            log.info("received %s; stopping (grace %gs)", _signal_name(first), grace)

            async def stop_at_once_on_another_signal() -> None:
                async for again in signals:
                    if again != signal.SIGHUP:
                        break
                log.info("received %s again; stopping at once", _signal_name(again))
                server.close()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(stop_at_once_on_another_signal)
                await server.shutdown(grace=grace)
                nursery.cancel_scope.cancel()
    log.info("stopped")


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:  # pragma: no cover - only the two signals above arrive
        return f"signal {signum}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments after the program name; None reads ``sys.argv``.

    Returns:
        The exit status. 0 after a clean stop (SIGTERM, Ctrl-C), 1 when the transport fails,
        2 for an unusable configuration.
    """
    args = _parser().parse_args(argv)
    level = args.log_level if args.command == "serve" else args.log.upper()
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "simulate":
        return _run_simulator(args)
    try:
        server = _server(args)
    except (ValueError, OSError) as exc:
        print(f"trio-modbus: {exc}", file=sys.stderr)
        return 2

    reload = _policy_reloader(server, args.authz) if args.authz else None
    return _run(_serve_until_signalled, server, args.grace, reload)


def _run_simulator(args: argparse.Namespace) -> int:
    try:
        simulator = _simulator(args)
    except (ValueError, OSError, ImportError) as exc:
        print(f"trio-modbus: {exc}", file=sys.stderr)
        return 2
    return _run(_simulate_until_signalled, simulator, args.http_port == 0)


def _run(main: Callable[..., Awaitable[None]], *args: Any) -> int:
    """``trio.run(main, *args)``; the exit status: 0, or 1 when it could not serve."""
    try:
        trio.run(main, *args)
    except KeyboardInterrupt:
        # Ctrl-C outside the signal receiver's lifetime (start-up, the last moments of exit).
        log.info("interrupted, stopped")
    except OSError as exc:
        print(f"trio-modbus: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
