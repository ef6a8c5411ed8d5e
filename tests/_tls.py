"""The TLS files of the tests: a throwaway PKI made with the ``openssl`` command.

The ``tls_files`` fixture (``tests/conftest.py``) makes it once per session.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway PKI: a CA, a server certificate for 127.0.0.1/localhost, a client one.

    Every path is a PEM file. A client verifies the server with ``cafile=ca``; a server that
    asks for client certificates trusts ``ca`` too. ``stranger_*`` is a self-signed client
    certificate the CA never signed.
    """

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    stranger_cert: str
    stranger_key: str


_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def make_tls_files(openssl: str, folder: Path) -> TlsFiles:
    """Generate the CA, server, client and stranger certificates in ``folder``."""

    def run(*args: str) -> None:
        result = subprocess.run(
            [openssl, *args], cwd=folder, capture_output=True, timeout=60, check=False
        )
        if result.returncode:
            pytest.fail(f"openssl {' '.join(args)} failed: {result.stderr.decode()}")

    run(
        "req", "-x509", *_EC_KEY, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=trio_modbus test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    for name, cn, extensions in (
        ("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
         "extendedKeyUsage=serverAuth\n"),
        ("client", "test-client", "extendedKeyUsage=clientAuth\n"),
    ):  # fmt: skip
        (folder / f"{name}.ext").write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid\n" + extensions
        )
        run("req", *_EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}")
        run(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext",
        )  # fmt: skip
    # A client certificate the server's CA did not sign (self-signed).
    run(
        "req", "-x509", *_EC_KEY, "-keyout", "stranger.key", "-out", "stranger.pem",
        "-days", "2", "-subj", "/CN=stranger",
        "-addext", "extendedKeyUsage=clientAuth",
    )  # fmt: skip
    return TlsFiles(
        ca=str(folder / "ca.pem"),
        server_cert=str(folder / "server.pem"),
        server_key=str(folder / "server.key"),
        client_cert=str(folder / "client.pem"),
        client_key=str(folder / "client.key"),
        stranger_cert=str(folder / "stranger.pem"),
        stranger_key=str(folder / "stranger.key"),
    )
