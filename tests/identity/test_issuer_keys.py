"""Fetching a federated issuer's keys, against a tiny HTTPS OIDC issuer run by the test (its own CA).

The issuer counts the requests it serves, so the cache, the refetch on an
unknown kid and its rate limit are observed from the issuer's side.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from strongroom.identity import oidc
from strongroom.identity.oidc import IssuerKeys, IssuerUnavailable, KeyNotFound
from strongroom.server.tls import CERT_FILE, KEY_FILE, ensure_certificates


class TinyIssuer:
    """`/.well-known/openid-configuration` and `/jwks` over TLS, with keys the test changes at will."""

    def __init__(self, tls_dir: Path) -> None:
        ensure_certificates(tls_dir, "localhost")
        self.ca = str(tls_dir / "ca.pem")
        self.jwks: list[dict] = []
        self.hits: list[str] = []
        self.discovery_override: dict | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                outer.hits.append(self.path)
                if self.path == "/.well-known/openid-configuration":
                    body = outer.discovery_override or {"issuer": outer.url, "jwks_uri": f"{outer.url}/jwks"}
                elif self.path == "/jwks":
                    body = {"keys": outer.jwks}
                elif self.path == "/huge":
                    body = {"keys": [], "padding": "x" * (oidc.MAX_DOCUMENT + 10)}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls_dir / CERT_FILE, tls_dir / KEY_FILE)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://localhost:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add_rsa(self, kid: str) -> rsa.RSAPrivateKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwks.append({**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig", "alg": "RS256"})
        return key

    def add_ec(self, kid: str) -> ec.EllipticCurvePrivateKey:
        key = ec.generate_private_key(ec.SECP256R1())
        self.jwks.append({**json.loads(ECAlgorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig", "alg": "ES256"})
        return key

    def jwks_fetches(self) -> int:
        return self.hits.count("/jwks")


@pytest.fixture
def issuer(tmp_path):
    srv = TinyIssuer(tmp_path / "tls")
    yield srv
    srv.httpd.shutdown()


def test_untrusted_ca_is_issuer_unavailable(issuer):
    issuer.add_rsa("k1")
    keys = IssuerKeys([])
    with pytest.raises(IssuerUnavailable, match="certificate verify failed"):
        keys.key(issuer.url, "k1", "RS256")


def test_keys_are_cached_and_a_new_kid_is_fetched_once(issuer, monkeypatch):
    monkeypatch.setattr(oidc, "REFETCH_INTERVAL", 0.3)
    issuer.add_rsa("k1")
    keys = IssuerKeys([issuer.ca])
    keys.key(issuer.url, "k1", "RS256")
    keys.key(issuer.url, "k1", "RS256")
    assert issuer.jwks_fetches() == 1
    time.sleep(0.35)
    issuer.add_ec("k2")  # the issuer rotates in a new key
    assert keys.key(issuer.url, "k2", "ES256") is not None
    assert issuer.jwks_fetches() == 2
    # Forged kids: one refetch per interval, not one per request.
    for i in range(5):
        with pytest.raises(KeyNotFound):
            keys.key(issuer.url, f"forged-{i}", "RS256")
    assert issuer.jwks_fetches() == 2
    time.sleep(0.35)
    with pytest.raises(KeyNotFound):
        keys.key(issuer.url, "forged-again", "RS256")
    assert issuer.jwks_fetches() == 3


def test_algorithm_must_match_the_key(issuer):
    issuer.add_rsa("k1")
    keys = IssuerKeys([issuer.ca])
    with pytest.raises(KeyNotFound):
        keys.key(issuer.url, "k1", "ES256")


def test_discovery_must_name_the_same_issuer(issuer):
    issuer.add_rsa("k1")
    issuer.discovery_override = {"issuer": "https://someone-else.example.com", "jwks_uri": f"{issuer.url}/jwks"}
    with pytest.raises(IssuerUnavailable, match="not usable") as exc:
        IssuerKeys([issuer.ca]).key(issuer.url, "k1", "RS256")
    assert "names issuer" in exc.value.detail  # the details are for the server log, not the answer


def test_jwks_uri_must_be_https(issuer):
    issuer.discovery_override = {"issuer": issuer.url, "jwks_uri": issuer.url.replace("https", "http") + "/jwks"}
    with pytest.raises(IssuerUnavailable, match="not usable") as exc:
        IssuerKeys([issuer.ca]).key(issuer.url, "k1", "RS256")
    assert "not https" in exc.value.detail  # the details are for the server log, not the answer


def test_oversized_documents_are_refused(issuer):
    issuer.discovery_override = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/huge"}
    with pytest.raises(IssuerUnavailable, match="not usable") as exc:
        IssuerKeys([issuer.ca]).key(issuer.url, "k1", "RS256")
    assert "larger than" in exc.value.detail  # the details are for the server log, not the answer


def test_last_good_keys_serve_through_an_outage(issuer, monkeypatch):
    issuer.add_rsa("k1")
    keys = IssuerKeys([issuer.ca])
    keys.key(issuer.url, "k1", "RS256")
    issuer.httpd.shutdown()
    issuer.httpd.server_close()
    monkeypatch.setattr(oidc, "CACHE_TTL", 1.0)  # stale after 1 s; the last keys may serve until 2 s
    monkeypatch.setattr(oidc, "REFETCH_INTERVAL", 0.0)
    time.sleep(1.1)
    assert keys.key(issuer.url, "k1", "RS256") is not None  # a refetch was attempted and failed
    time.sleep(1.0)
    with pytest.raises(IssuerUnavailable, match="could not be fetched"):
        keys.key(issuer.url, "k1", "RS256")


def test_without_fetch_only_cached_keys_answer(issuer, monkeypatch):
    """The token endpoint asks on its event loop first: never a network call there, never a wait on another fetch."""
    monkeypatch.setattr(oidc, "REFETCH_INTERVAL", 0.3)
    issuer.add_rsa("k1")
    keys = IssuerKeys([issuer.ca])
    with pytest.raises(oidc.FetchNeeded):
        keys.key(issuer.url, "k1", "RS256", fetch=False)
    assert issuer.jwks_fetches() == 0
    cached = keys.key(issuer.url, "k1", "RS256")
    assert keys.key(issuer.url, "k1", "RS256", fetch=False) is cached
    time.sleep(0.35)
    issuer.add_rsa("k2")
    with pytest.raises(oidc.FetchNeeded):  # a kid not yet seen: the refetch belongs in a thread
        keys.key(issuer.url, "k2", "RS256", fetch=False)
    entry = keys._entry(issuer.url)
    with entry.lock:  # another thread fetching: do not wait for it
        with pytest.raises(oidc.FetchNeeded):
            keys.key(issuer.url, "k1", "RS256", fetch=False)
    assert issuer.jwks_fetches() == 1
