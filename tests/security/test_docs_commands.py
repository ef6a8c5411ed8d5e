"""The openssl commands of docs/howto/security.md make certificates serve_mbaps accepts."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import trio

from trio_modbus import serve_mbaps
from trio_modbus.security import extract_role

from .._tools import require_tool
from .conftest import connect, make_context

PAGE = Path(__file__).resolve().parents[2] / "docs" / "howto" / "security.md"

pytestmark = pytest.mark.slow  # openssl processes


def _openssl_block() -> str:
    blocks = re.findall(r"^```sh\n(.*?)^```", PAGE.read_text(), re.MULTILINE | re.DOTALL)
    (block,) = [b for b in blocks if "openssl req -x509" in b]
    return block


@pytest.fixture
def made(tmp_path: Path) -> Path:
    require_tool("openssl")
    done = subprocess.run(
        ["bash", "-e", "-c", _openssl_block()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return tmp_path


async def test_the_documented_openssl_commands_make_a_working_pki(made: Path) -> None:
    import ssl

    from cryptography import x509

    operator = x509.load_pem_x509_certificate((made / "operator.pem").read_bytes())
    assert extract_role(operator) == "operator"
    roles = []

    def authorizer(request):
        roles.append(request.role)
        return True

    ctx = ssl.create_default_context(cafile=str(made / "ca.pem"))
    ctx.load_cert_chain(made / "operator.pem", made / "operator.key")
    with trio.fail_after(10):
        async with (
            serve_mbaps(
                make_context(),
                port=0,
                certfile=str(made / "server.pem"),
                keyfile=str(made / "server.key"),
                cafile=str(made / "ca.pem"),
                authorizer=authorizer,
            ) as server,
            connect(server.address, ctx) as client,
        ):
            assert (await client.ask(1, bytes.fromhex("0300000001")))[0] == 3
    assert roles == ["operator"]
