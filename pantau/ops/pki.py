"""A small development PKI: a CA, the broker's certificate and per-site client certificates.

Production uses the operator's own CA; this makes the same files for tests, demos and pilots.
Layout of the directory: ``ca.crt``/``ca.key``, ``broker.crt``/``broker.key``,
``sites/<site>.crt``/``sites/<site>.key``. Keys are written readable by the owner only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pantau.core.contract import ID_PATTERN, RESERVED_ID_PREFIX

CA_DAYS = 3650
LEAF_DAYS = 825  # the longest lifetime browsers and most TLS stacks accept for a leaf


class PkiError(Exception):
    """A PKI file is missing or an input is invalid; the message says which."""


@dataclass(frozen=True)
class Issued:
    """Paths of a certificate and its key."""

    cert: Path
    key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pantau"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def init_ca(directory: Path, *, name: str = "pantau dev CA", force: bool = False) -> Issued:
    """Create the CA (refuses to overwrite an existing one unless ``force``)."""
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    if cert_path.exists() and not force:
        raise PkiError(f"{cert_path} exists; pass --force to replace the CA (every cert with it)")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return Issued(cert_path, key_path)


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    if not cert_path.exists() or not key_path.exists():
        raise PkiError(f"no CA in {directory}: run `pantau certs init --dir {directory}` first")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{key_path} is not an EC key made by pantau certs init")
    return cert, key


def _issue(
    directory: Path,
    common_name: str,
    *,
    usage: x509.ObjectIdentifier,
    hosts: list[str],
    out: Path,
    days: float = LEAF_DAYS,
) -> Issued:
    ca_cert, ca_key = _load_ca(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    issued = Issued(out.with_suffix(".crt"), out.with_suffix(".key"))
    _write_key(issued.key, key)
    _write_cert(issued.cert, cert)
    return issued


def issue_broker(directory: Path, hosts: list[str]) -> Issued:
    """The broker's server certificate for these host names and IP addresses."""
    if not hosts:
        raise PkiError("give at least one --host the agents use to reach the broker")
    return _issue(
        directory, hosts[0], usage=ExtendedKeyUsageOID.SERVER_AUTH, hosts=hosts,
        out=directory / "broker",
    )  # fmt: skip


def issue_server(directory: Path, name: str, hosts: list[str], *, days: float) -> Issued:
    """A server certificate ``name`` for ``hosts`` valid ``days`` from now (the simulated
    e-government services: one close to expiry)."""
    return _issue(
        directory, hosts[0], usage=ExtendedKeyUsageOID.SERVER_AUTH, hosts=hosts,
        out=directory / "servers" / name, days=days,
    )  # fmt: skip


def issue_site(directory: Path, site: str) -> Issued:
    """A site's client certificate; its common name is the site id (the broker's username)."""
    if not re.fullmatch(ID_PATTERN, site) or site.startswith(RESERVED_ID_PREFIX):
        raise PkiError(
            f"{site!r} is not a valid site id (letters, digits, _ . -; max 64; not starting "
            f"with {RESERVED_ID_PREFIX!r}: a certificate's CN becomes its broker user name)"
        )
    return _issue(
        directory, site, usage=ExtendedKeyUsageOID.CLIENT_AUTH, hosts=[],
        out=directory / "sites" / site,
    )  # fmt: skip
