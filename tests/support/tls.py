"""A throwaway certificate authority for TLS tests: CA, server certificate for 127.0.0.1 and
localhost, as PEM files (and PKCS#12 for Java brokers such as ActiveMQ)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

if TYPE_CHECKING:
    from pathlib import Path

PKCS12_PASSWORD = "changeit"  # test-only keystore password


@dataclass(frozen=True)
class TestCA:
    cafile: Path
    certfile: Path
    keyfile: Path
    keystore: Path
    """PKCS#12 with the server key and certificate (password :data:`PKCS12_PASSWORD`)."""
    truststore: Path
    """PKCS#12 holding only the CA certificate."""


def make_test_ca(directory: Path) -> TestCA:
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shopmq test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    cafile, certfile, keyfile = (directory / n for n in ("ca.pem", "server.pem", "server.key"))
    cafile.write_bytes(ca_cert.public_bytes(pem))
    certfile.write_bytes(cert.public_bytes(pem))
    keyfile.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    keyfile.chmod(0o600)
    encryption = serialization.BestAvailableEncryption(PKCS12_PASSWORD.encode())
    keystore = directory / "server.p12"
    keystore.write_bytes(
        pkcs12.serialize_key_and_certificates(b"server", key, cert, [ca_cert], encryption)
    )
    truststore = directory / "truststore.p12"
    truststore.write_bytes(
        pkcs12.serialize_java_truststore([pkcs12.PKCS12Certificate(ca_cert, b"ca")], encryption)
    )
    return TestCA(cafile, certfile, keyfile, keystore, truststore)
