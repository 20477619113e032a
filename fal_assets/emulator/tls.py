"""The emulator's HTTPS: a private test CA (``trustme``) and a server certificate for
127.0.0.1 and localhost. Clients trust it through ``SSL_CERT_FILE=<ca.pem>``."""

from __future__ import annotations

import ipaddress
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme

from ..atomic import write_bytes

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"


@dataclass
class Tls:
    context: ssl.SSLContext
    ca_file: Path
    _temp_dir: Path | None = None

    def cleanup(self) -> None:
        """Remove the CA folder when it was a temporary one."""
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None


def _load_or_create_ca(cert_dir: Path) -> trustme.CA:
    cert_path, key_path = cert_dir / CA_FILE, cert_dir / CA_KEY_FILE
    if cert_path.is_file() and key_path.is_file():
        # Reusing the CA lets a CI job trust it once across emulator restarts.
        return trustme.CA.from_pem(cert_path.read_bytes(), key_path.read_bytes())
    ca = trustme.CA(organization_name="fal-assets emulator")
    write_bytes(key_path, ca.private_key_pem.bytes())  # mkstemp: readable by the owner only
    write_bytes(cert_path, ca.cert_pem.bytes())
    os.chmod(cert_path, 0o644)
    return ca


def server_tls(cert_dir: Path | None, hosts: list[str]) -> Tls:
    """An SSL context for the server and the CA file clients must trust.

    Without ``cert_dir`` the CA lives in a temporary folder removed by ``cleanup()``;
    with one, ``ca.pem``/``ca-key.pem`` there are reused or created.
    """
    temp_dir = None
    if cert_dir is None:
        temp_dir = cert_dir = Path(tempfile.mkdtemp(prefix="fal-emulator-"))
    cert_dir = Path(cert_dir)
    cert_dir.mkdir(parents=True, exist_ok=True)
    ca = _load_or_create_ca(cert_dir)
    identities = ["127.0.0.1", "localhost"]
    for host in hosts:
        if host and host not in identities and not _is_wildcard(host):
            identities.append(host)
    server_cert = ca.issue_cert(*identities)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    return Tls(context, cert_dir / CA_FILE, temp_dir)


def client_context(ca_file: str | Path) -> ssl.SSLContext:
    """An SSL context that trusts only the emulator's CA."""
    return ssl.create_default_context(cafile=str(ca_file))


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False
