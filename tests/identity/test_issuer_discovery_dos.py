"""Federated issuer discovery cannot hold the token endpoint: deadline, single flight, in-flight cap, no leaks.

A real `strongroom up` trusts the CA of a local HTTPS "issuer" that drips its
discovery document one byte every half second (or answers 503). Token requests
with assertions of that issuer are sent over the wire, as any unauthenticated
client could send them once a federated credential names the issuer.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from strongroom.identity import oidc
from strongroom.server.tls import CERT_FILE, KEY_FILE, ensure_certificates
from tests.conftest import Server, start_server
from tests.identity.conftest import EXCHANGE, Admin, assertion_form, token_request

SLACK = 3.0  # scheduling slack on a loaded 2-core machine


class DrippingIssuer:
    """HTTPS on localhost: `/drip*/.well-known/openid-configuration` trickles out; `/down*/...` answers 503."""

    def __init__(self, tls_dir: Path) -> None:
        ensure_certificates(tls_dir, "localhost")
        self.ca = str(tls_dir / "ca.pem")
        self.hits: list[str] = []
        self.stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                outer.hits.append(self.path)
                if self.path.startswith("/down"):
                    self.send_error(503, "internal-maintenance-window-7")
                    return
                body = json.dumps({"issuer": "x" * 200}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for i in range(len(body)):
                        if outer.stop.wait(0.5):
                            return
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                except OSError:
                    return

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls_dir / CERT_FILE, tls_dir / KEY_FILE)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://localhost:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def discovery_hits(self, prefix: str) -> int:
        return sum(1 for p in self.hits if p.startswith(prefix))

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def drip(tmp_path_factory):
    srv = DrippingIssuer(tmp_path_factory.mktemp("drip"))
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def trusting(tmp_path_factory, drip: DrippingIssuer) -> Server:
    srv = start_server(tmp_path_factory.mktemp("trusting"), "--issuer-ca-file", drip.ca)
    yield srv
    srv.stop()


def _assertion(fed) -> str:
    t = int(time.time())
    claims = {"iss": fed.issuer, "sub": f"system:serviceaccount:{fed.namespace}:{fed.service_account}",
              "aud": [EXCHANGE], "iat": t, "exp": t + 600}
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def _exchange(server: Server, fed) -> tuple[float, dict]:
    start = time.monotonic()
    r = token_request(server, assertion_form(server, fed.client_id, _assertion(fed)))
    return time.monotonic() - start, r.json()


def test_a_dripping_issuer_is_cut_off_at_the_deadline_and_concurrent_requests_share_one_fetch(trusting, drip):
    admin = Admin(trusting)
    fed = admin.federate(issuer=f"{drip.url}/drip-a")
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: _exchange(trusting, fed), range(6)))
    for took, body in results:
        assert body["error_codes"] == [50166]
        assert took < oidc.TIMEOUT + SLACK  # not the ~100 s the document takes to drip out
    assert drip.discovery_hits("/drip-a") == 1  # single flight: six requests, one fetch
    # For a short while the failure is answered from the cache, without a new fetch.
    took, body = _exchange(trusting, fed)
    assert body["error_codes"] == [50166] and took < 1.5
    assert drip.discovery_hits("/drip-a") == 1


def test_the_answer_names_no_detail_of_the_other_host(trusting, drip):
    fed = Admin(trusting).federate(issuer=f"{drip.url}/down-b")
    _, body = _exchange(trusting, fed)
    assert body["error_codes"] == [50166]
    description = body["error_description"]
    assert "could not be fetched" in description
    assert "503" not in description and "maintenance" not in description and "openid-configuration" not in description


def test_fetches_in_flight_are_capped(trusting, drip):
    admin = Admin(trusting)
    feds = [admin.federate(issuer=f"{drip.url}/drip-cap{i}") for i in range(oidc.MAX_FETCHES_IN_FLIGHT + 2)]
    with ThreadPoolExecutor(len(feds)) as pool:
        results = list(pool.map(lambda f: _exchange(trusting, f), feds))
    busy = [took for took, body in results if "retry shortly" in body.get("error_description", "")]
    assert busy and max(busy) < 2.0  # refused at once, not queued behind the slow fetches
    assert all(body["error_codes"] == [50166] for _, body in results)
    assert sum(drip.discovery_hits(f"/drip-cap{i}") for i in range(len(feds))) <= oidc.MAX_FETCHES_IN_FLIGHT
