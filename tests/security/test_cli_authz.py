"""``trio-modbus serve --transport tls --authz FILE``: the policy, reloaded on SIGHUP."""

from __future__ import annotations

import argparse
import logging
import signal

import pytest
import trio
import trio.testing

from trio_modbus.cli import _parser, _policy_reloader, _serve_until_signalled, _server, main

from ._policies import POLICY
from .conftest import client_context, connect, policy_file

READ = bytes.fromhex("0300000001")


def _args(pki, path, *extra: str) -> argparse.Namespace:
    return _parser().parse_args(
        [
            "serve",
            "--transport",
            "tls",
            "--port",
            "0",
            "--certfile",
            pki.server_cert,
            "--keyfile",
            pki.server_key,
            "--cafile",
            pki.ca,
            "--authz",
            str(path),
            *extra,
        ]
    )


async def test_sighup_reloads_the_policy_and_keeps_it_on_a_bad_file(pki, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="trio_modbus.cli")
    path = policy_file(tmp_path, POLICY)
    server = _server(_args(pki, path))
    reload = _policy_reloader(server, str(path))
    ctx = client_context(pki, "operator")
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_serve_until_signalled, server, 1.0, reload)
            while not server.running or server.address[1] == 0:
                await trio.sleep(0.01)
            async with connect(server.address, ctx) as c:
                assert (await c.ask(1, READ))[0] == 3  # allowed
            # The operator loses its rights; SIGHUP brings the new policy in.
            path.write_text(
                POLICY.replace(
                    'units = [1]\naccess = ["read", "write"]',
                    'units = [7]\naccess = ["read", "write"]',
                )
            )
            await trio.testing.wait_all_tasks_blocked()
            signal.raise_signal(signal.SIGHUP)
            while "policy reloaded" not in caplog.text:
                await trio.sleep(0.01)
            async with connect(server.address, ctx) as c:
                assert await c.ask(1, READ) == b"\x83\x01"
            # A broken file: logged, the policy in force stays.
            path.write_text("[roles.operator\n")
            signal.raise_signal(signal.SIGHUP)
            while "not reloaded" not in caplog.text:
                await trio.sleep(0.01)
            async with connect(server.address, ctx) as c:
                assert await c.ask(1, READ) == b"\x83\x01"
            signal.raise_signal(signal.SIGTERM)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and str(path) in errors[0].getMessage()


def test_a_bad_policy_is_a_usage_error_naming_the_file(pki, tmp_path, capsys):
    path = policy_file(tmp_path, "[roles]\n")
    status = main(
        [
            "serve",
            "--transport",
            "tls",
            "--certfile",
            pki.server_cert,
            "--keyfile",
            pki.server_key,
            "--cafile",
            pki.ca,
            "--authz",
            str(path),
        ]
    )
    assert status == 2
    assert f"{path}: roles: is empty" in capsys.readouterr().err


def test_authz_needs_tls_and_a_ca(pki, tmp_path):
    path = policy_file(tmp_path, POLICY)
    with pytest.raises(SystemExit, match="--transport tls"):
        main(["serve", "--authz", str(path)])
    with pytest.raises(SystemExit, match="--cafile"):
        main(["serve", "--transport", "tls", "--certfile", pki.server_cert, "--authz", str(path)])
