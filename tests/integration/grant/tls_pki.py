"""A throw-away PKI for the TLS tests: a CA, a server certificate for 127.0.0.1, CA-issued and self-signed client
certificates. Keys are P-256 (fast to generate); everything is written as PEM under a temporary directory."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CLIENT_COMMON_NAME",
    "Pki",
    "cert_thumbprint",
    "issue",
    "make_ca",
    "make_pki",
    "self_signed_client",
    "write_cert",
    "write_key",
]

#: The common name of the CA-issued client certificate (the client's ``client_id`` in the tests).
CLIENT_COMMON_NAME = "client-id"


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def cert_thumbprint(path: Path) -> str:
    """Hex SHA-256 of the certificate's DER encoding (RFC 8705 §3.1 ``x5t#S256``, before base64url)."""
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _self_signed_builder(
    common_name: str,
) -> tuple[ec.EllipticCurvePrivateKey, x509.CertificateBuilder]:
    """A fresh key and a builder for a certificate that is its own issuer, valid from 5 minutes ago for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    return key, builder


def make_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key, builder = _self_signed_builder(common_name)
    cert = (
        builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, common_name: str, *, server: bool
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def self_signed_client(root: Path, common_name: str) -> tuple[Path, Path]:
    """A self-signed client certificate and its key (RFC 8705 §2.2), as ``(cert, key)`` files under ``root``.

    It is its own issuer, so a server can trust exactly it (``load_verify_locations``) and compare thumbprints.
    """
    key, builder = _self_signed_builder(common_name)
    usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    cert = builder.add_extension(usage, critical=False).sign(key, hashes.SHA256())
    return write_cert(root / f"{common_name}.pem", cert), write_key(root / f"{common_name}-key.pem", key)


def make_pki(root: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1, a client certificate, and an unrelated CA, under ``root``."""
    ca_key, ca_cert = make_ca("tokenrelay test CA")
    server_key, server_cert = issue(ca_key, ca_cert, "127.0.0.1", server=True)
    client_key, client_cert = issue(ca_key, ca_cert, CLIENT_COMMON_NAME, server=False)
    _, other_cert = make_ca("some other CA")
    return Pki(
        ca=write_cert(root / "ca.pem", ca_cert),
        server_cert=write_cert(root / "server.pem", server_cert),
        server_key=write_key(root / "server-key.pem", server_key),
        client_cert=write_cert(root / "client.pem", client_cert),
        client_key=write_key(root / "client-key.pem", client_key),
        other_ca=write_cert(root / "other-ca.pem", other_cert),
    )
