"""TLS: only 1.2 and 1.3 are spoken, the certificate names every way users reach the server,
and the first start leaves the promised files with private modes."""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import stat
import threading
import warnings

import pytest
from cryptography import x509

# TLS < 1.2 is deprecated in Python; the test uses it on purpose to prove it is refused.
warnings.filterwarnings("ignore", "ssl.TLSVersion.TLSv1", DeprecationWarning)
warnings.filterwarnings("ignore", "ssl.PROTOCOL_TLS", DeprecationWarning)
# The same inside the tests, where pytest's own filters apply: offering TLS 1.0/1.1 is the point.
pytestmark = [
    pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS:DeprecationWarning"),
]


def legacy_client(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that speaks only `version`, with every cipher OpenSSL still has."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = version
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


def handshake(ctx: ssl.SSLContext, port: int, server_hostname: str = "localhost") -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            return tls.version()


@pytest.fixture(scope="module")
def permissive_twin(server):
    """A bare TLS server with the same certificate that does accept old versions.

    It proves the legacy client below really can negotiate TLS 1.0/1.1 on this
    machine, so the refusal by strongroom is strongroom's doing.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(server.state_dir / "server.pem", server.state_dir / "server.key")
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["tls1.0", "tls1.1"])
def test_old_tls_versions_are_refused(server, permissive_twin, version):
    assert handshake(legacy_client(version), permissive_twin) == {
        ssl.TLSVersion.TLSv1: "TLSv1", ssl.TLSVersion.TLSv1_1: "TLSv1.1"
    }[version]
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        handshake(legacy_client(version), server.port)


@pytest.mark.parametrize(
    "version,name", [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")], ids=["tls1.2", "tls1.3"]
)
@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1", "kv1.vault.localhost", "vault.localhost"])
def test_modern_tls_verifies_against_the_ca(server, version, name, hostname):
    ctx = ssl.create_default_context(cafile=server.ca)
    ctx.minimum_version = ctx.maximum_version = version
    assert handshake(ctx, server.port, hostname) == name


def test_hostname_outside_the_certificate_is_refused(server):
    ctx = ssl.create_default_context(cafile=server.ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(ctx, server.port, "example.com")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(ctx, server.port, "a.b.vault.localhost")  # a wildcard covers one label only


def test_certificate_names(server):
    cert = x509.load_pem_x509_certificate((server.state_dir / "server.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "*.vault.localhost"} <= set(san.get_values_for_type(x509.DNSName))
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    ca = x509.load_pem_x509_certificate((server.state_dir / "ca.pem").read_bytes())
    assert cert.issuer == ca.subject
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    cert.verify_directly_issued_by(ca)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_writes_the_promised_files(server):
    state = server.state_dir
    assert _mode(state) == 0o700
    for private in ("master.key", "admin.json", "server.key", "ca.key"):
        assert _mode(state / private) == 0o600, private
    assert (state / "ca.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    admin = json.loads((state / "admin.json").read_text())
    assert {"server", "tenantId", "clientId", "clientSecret"} <= set(admin)
    assert admin["server"] == server.url
    assert len(admin["clientSecret"]) >= 32
