"""The ``trio-modbus`` command: ``trio-modbus serve`` runs a server on an embedded datastore."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

import trio

from trio_modbus._framer_type import FramerType
from trio_modbus.datastore import (
    ModbusDeviceContext,
    ModbusDeviceIdentification,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)

__all__ = ["DEFAULT_BLOCK_SIZE", "default_context", "main"]

DEFAULT_HOST = "127.0.0.1"  # the command serves loopback unless told otherwise
DEFAULT_PORT = 5020  # unprivileged stand-in for 502
DEFAULT_BLOCK_SIZE = 10_000  # addresses 0..9999 of each table in the embedded datastore

log = logging.getLogger("trio_modbus.server")


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trio-modbus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a Modbus server on an embedded datastore")
    serve.add_argument("--transport", choices=["tcp", "tls", "udp", "serial"], default="tcp")
    serve.add_argument("--host", default=DEFAULT_HOST, help="interface (default 127.0.0.1)")
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
        "--units",
        default="",
        help="comma-separated unit ids, each with its own device (default: one device, any id)",
    )
    serve.add_argument("--size", type=int, default=DEFAULT_BLOCK_SIZE, help="addresses per table")
    serve.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    return parser


def _server(args: argparse.Namespace) -> Any:
    from trio_modbus.server import serve_serial, serve_tcp, serve_tls, serve_udp

    units = [int(u) for u in args.units.split(",") if u.strip()]
    context = default_context(units, args.size)
    identity = _default_identity()
    port = args.port if args.port is not None else DEFAULT_PORT
    if args.transport == "tcp":
        return serve_tcp(
            context, host=args.host, port=port, framer=args.framer or "socket", identity=identity
        )
    if args.transport == "udp":
        return serve_udp(
            context, host=args.host, port=port, framer=args.framer or "socket", identity=identity
        )
    if args.transport == "tls":
        return serve_tls(
            context,
            host=args.host,
            port=port,
            certfile=args.certfile,
            keyfile=args.keyfile,
            cafile=args.cafile,
            require_client_cert=args.require_client_cert,
            identity=identity,
        )
    if not args.device:
        raise SystemExit("trio-modbus: --device is required with --transport serial")
    return serve_serial(
        context,
        port=args.device,
        framer=args.framer or "rtu",
        baudrate=args.baudrate,
        bytesize=args.bytesize,
        parity=args.parity,
        stopbits=args.stopbits,
        broadcast=args.broadcast,
        identity=identity,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        server = _server(args)
    except (ValueError, OSError) as exc:
        print(f"trio-modbus: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        async with server:
            await trio.sleep_forever()

    try:
        trio.run(run)
    except KeyboardInterrupt:
        log.info("interrupted, stopped")
    except OSError as exc:
        print(f"trio-modbus: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
