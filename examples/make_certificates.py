"""Make a small PKI for Modbus/TCP Security with Python's ``cryptography`` package.

Usage: ``python examples/make_certificates.py DIRECTORY``. Writes ``ca.pem`` (what the server
trusts), ``server.pem``/``server.key`` (for 127.0.0.1 and localhost), and a client certificate
per role: ``operator.pem``/``operator.key`` and ``viewer.pem``/``viewer.key`` carrying the
Modbus role extension, and ``norole.pem``/``norole.key`` without one (the NULL role).
"""

import datetime
import ipaddress
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROLE_OID = x509.ObjectIdentifier("1.3.6.1.4.1.50316.802.1")


def role_extension(role: str) -> x509.UnrecognizedExtension:
    """The Modbus role extension: the role as a DER UTF8String (tag 0x0C)."""
    data = role.encode("utf-8")
    if len(data) < 0x80:
        length = bytes([len(data)])
    else:
        size = (len(data).bit_length() + 7) // 8
        length = bytes([0x80 | size]) + len(data).to_bytes(size, "big")
    return x509.UnrecognizedExtension(ROLE_OID, b"\x0c" + length + data)


def certificate(subject, issuer, public_key, signing_key, days, extensions):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, hashes.SHA256())


def write(folder: Path, name: str, cert, key) -> None:
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_pki(folder: Path, roles=("operator", "viewer")) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate(
        "Plant CA",
        "Plant CA",
        ca_key.public_key(),
        ca_key,
        3650,
        [(x509.BasicConstraints(ca=True, path_length=None), True)],
    )
    write(folder, "ca", ca, ca_key)

    server_key = ec.generate_private_key(ec.SECP256R1())
    addresses = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    server = certificate(
        "plc-1",
        "Plant CA",
        server_key.public_key(),
        ca_key,
        825,
        [
            (x509.SubjectAlternativeName(addresses), False),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )
    write(folder, "server", server, server_key)

    for role in (*roles, None):
        key = ec.generate_private_key(ec.SECP256R1())
        extensions = [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)]
        if role is not None:
            extensions.append((role_extension(role), False))
        name = role or "norole"
        write(
            folder,
            name,
            certificate(f"hmi {name}", "Plant CA", key.public_key(), ca_key, 365, extensions),
            key,
        )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    make_pki(Path(sys.argv[1]))
