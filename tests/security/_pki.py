"""A throwaway PKI for the security tests, built with ``cryptography``.

A root CA and an intermediate CA; a server certificate for 127.0.0.1 signed by the root;
client certificates signed by the intermediate (each client file holds its chain), with the
Modbus role extension in every shape the tests need: a role, none, a duplicate, the wrong
string type, bad DER; and clients that are expired, not yet valid or from an unknown CA.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROLE_OID = x509.ObjectIdentifier("1.3.6.1.4.1.50316.802.1")
_NOW = datetime.datetime.now(datetime.UTC)
_DAY = datetime.timedelta(days=1)


def utf8_string(text: str) -> bytes:
    """The DER encoding of an ASN.1 UTF8String."""
    return der_string(0x0C, text.encode("utf-8"))


def der_string(tag: int, data: bytes) -> bytes:
    """A DER TLV with ``tag`` (short or long length form)."""
    n = len(data)
    if n < 0x80:
        return bytes((tag, n)) + data
    size = (n.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + n.to_bytes(size, "big") + data


def role_extension(value: bytes) -> x509.UnrecognizedExtension:
    """The role extension with raw ``value`` bytes (any DER, valid or not)."""
    return x509.UnrecognizedExtension(ROLE_OID, value)


@dataclass
class Issuer:
    """A CA: its certificate and key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str, parent: Issuer | None = None) -> Issuer:
    """A CA certificate: self-signed, or signed by ``parent``."""
    key = _key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(parent.cert.subject if parent else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - _DAY)
        .not_valid_after(_NOW + 30 * _DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if parent is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()), False
        )
    signer = parent.key if parent else key
    return Issuer(builder.sign(signer, hashes.SHA256()), key)


def make_leaf(
    issuer: Issuer,
    cn: str,
    *,
    server: bool = False,
    extensions: list[x509.ExtensionType] = (),  # type: ignore[assignment]
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A leaf certificate signed by ``issuer``, with extra (non-critical) extensions."""
    key = _key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or _NOW - _DAY)
        .not_valid_after(not_after or _NOW + 30 * _DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    # The builder's constructor takes extensions as they are: add_extension() would refuse a
    # second role extension, which the tests need.
    builder = x509.CertificateBuilder(
        builder._issuer_name,
        builder._subject_name,
        builder._public_key,
        builder._serial_number,
        builder._not_valid_before,
        builder._not_valid_after,
        [*builder._extensions, *(x509.Extension(e.oid, False, e) for e in extensions)],
    )
    return builder.sign(issuer.key, hashes.SHA256()), key


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(size)]) + size


def _der_element(der: bytes, pos: int) -> tuple[int, int]:
    """(start of the content, end) of the DER element at ``pos``."""
    length, head = der[pos + 1], 2
    if length & 0x80:
        count = length & 0x7F
        length, head = int.from_bytes(der[pos + 2 : pos + 2 + count], "big"), 2 + count
    return pos + head, pos + head + length


def resigned(issuer: Issuer, cert: x509.Certificate, old: bytes, new: bytes) -> x509.Certificate:
    """``cert`` with the bytes ``old`` of its signed part replaced by ``new`` (the same
    length), signed again by ``issuer``: a certificate OpenSSL takes and the builder would
    not make (a subject in a string type ``cryptography`` refuses to read, say)."""
    der = cert.public_bytes(serialization.Encoding.DER)
    tbs_start, _ = _der_element(der, 0)
    _, tbs_end = _der_element(der, tbs_start)
    _, algorithm_end = _der_element(der, tbs_end)
    tbs = der[tbs_start:tbs_end]
    assert old in tbs and len(old) == len(new)
    tbs = tbs.replace(old, new, 1)
    signature = issuer.key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    bits = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    body = tbs + der[tbs_end:algorithm_end] + bits
    return x509.load_der_x509_certificate(b"\x30" + _der_length(len(body)) + body)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class Pki:
    """The files: ``ca`` (root, what the server trusts), ``server_cert``/``server_key``, and
    ``clients[name] = (cert chain file, key file)``."""

    folder: Path
    ca: str
    server_cert: str
    server_key: str
    clients: dict[str, tuple[str, str]]
    certs: dict[str, x509.Certificate]
    crl: str  # the intermediate CA's CRL: "revoked" is on it


# name -> role extensions (each a raw DER value) and validity
CLIENTS: dict[str, list[bytes]] = {
    "operator": [utf8_string("operator")],
    "viewer": [utf8_string("viewer")],
    "admin": [utf8_string("admin")],
    "norole": [],
    "trailing": [utf8_string("operator ")],
    "upper": [utf8_string("Operator")],
    "long": [utf8_string("r" * 200)],
    "unicode": [utf8_string("Bediener-Ä-東京")],
    "printable": [der_string(0x13, b"operator")],  # PrintableString
    "baddern": [b"\x0c\x09operator"],  # the length says 9, 8 bytes follow
    "badder_long": [b"\x0c\x81\x05hello"],  # long form for a short length
    "badutf8": [der_string(0x0C, b"\xff\xfe")],
}


def make_pki(folder: Path) -> Pki:
    """Write the whole PKI into ``folder``."""
    root = make_ca("trio_modbus test root CA")
    inter = make_ca("trio_modbus test intermediate CA", root)
    stranger_ca = make_ca("somebody else's CA")

    def write(name: str, data: bytes) -> str:
        path = folder / name
        path.write_bytes(data)
        return str(path)

    ca = write("ca.pem", _pem(root.cert))
    server, server_key = make_leaf(root, "modbus server", server=True)
    clients: dict[str, tuple[str, str]] = {}
    certs: dict[str, x509.Certificate] = {}

    def client(name: str, issuer: Issuer, **kw: object) -> None:
        cert, key = make_leaf(issuer, f"client {name}", **kw)  # type: ignore[arg-type]
        chain = _pem(cert) + (_pem(issuer.cert) if issuer is inter else b"")
        clients[name] = (write(f"{name}.pem", chain), write(f"{name}.key", _key_pem(key)))
        certs[name] = cert

    for name, values in CLIENTS.items():
        client(name, inter, extensions=[role_extension(v) for v in values])
    client(
        "duplicate",
        inter,
        extensions=[role_extension(utf8_string("a")), role_extension(utf8_string("b"))],
    )
    client(
        "expired",
        inter,
        extensions=[role_extension(utf8_string("operator"))],
        not_before=_NOW - 10 * _DAY,
        not_after=_NOW - _DAY,
    )
    client(
        "notyet",
        inter,
        extensions=[role_extension(utf8_string("operator"))],
        not_before=_NOW + _DAY,
        not_after=_NOW + 10 * _DAY,
    )
    client("stranger", stranger_ca, extensions=[role_extension(utf8_string("operator"))])
    client("revoked", inter, extensions=[role_extension(utf8_string("operator"))])
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(inter.cert.subject)
        .last_update(_NOW - _DAY)
        .next_update(_NOW + 30 * _DAY)
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(certs["revoked"].serial_number)
            .revocation_date(_NOW - _DAY)
            .build()
        )
        .sign(inter.key, hashes.SHA256())
    )
    return Pki(
        folder,
        ca,
        write("server.pem", _pem(server)),
        write("server.key", _key_pem(server_key)),
        clients,
        certs,
        write("crl.pem", crl.public_bytes(serialization.Encoding.PEM)),
    )
