"""A Modbus/TCP Security server: mutual TLS, roles from client certificates, a policy file.

Usage: ``python examples/mbaps_server.py server.pem server.key ca.pem roles.toml [port]``
(make the certificates with ``examples/make_certificates.py``). Every client needs a
certificate signed by ``ca.pem``; each request is authorized by the certificate's role with
the policy in ``roles.toml``, which is read again on SIGHUP.
"""

import contextlib
import logging
import signal
import sys

import trio

from trio_modbus import (
    ConfigurationError,
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
    serve_mbaps,
)
from trio_modbus.security import load_policy


async def run(
    certfile: str,
    keyfile: str,
    cafile: str,
    policy_file: str,
    port: int = 8802,
    *,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    device = ModbusDeviceContext(
        hr=ModbusSequentialDataBlock(0, list(range(100))),
        co=ModbusSequentialDataBlock(0, [False] * 100),
        zero_mode=True,
    )
    async with serve_mbaps(
        ModbusServerContext(devices={1: device}, single=False),
        port=port,
        certfile=certfile,
        keyfile=keyfile,
        cafile=cafile,
        authorizer=load_policy(policy_file),
    ) as server:
        print(f"Modbus/TCP Security server on {server.address[0]}:{server.address[1]}")
        task_status.started(server)
        with trio.open_signal_receiver(signal.SIGHUP) as hangups:
            async for _ in hangups:
                try:
                    server.set_authorizer(load_policy(policy_file))
                except ConfigurationError as exc:
                    logging.error("policy not reloaded: %s", exc)


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(run, *sys.argv[1:5], int(sys.argv[5]) if len(sys.argv) > 5 else 8802)
