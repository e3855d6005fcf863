"""CPU-heavy and deeply nested input cannot freeze the server.

Attacks over the wire against the session's real server (the official KeyClient
where it can send the payload, raw HTTPS where it cannot), plus the crypto pool's
bounds in process.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time

import httpx
import pytest

from strongroom.server.crypto_pool import CryptoPool
from strongroom.server.throttle import Throttled
from tests.conftest import Server


def _b64u_int(value: int) -> str:
    import base64

    return base64.urlsafe_b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).decode().rstrip("=")


@pytest.fixture(scope="module")
def vault_token(server: Server, vault: str, admin_credential) -> str:
    return admin_credential.get_token(f"https://vault.localhost:{server.port}/.default").token


def _import(server: Server, vault: str, token: str, jwk: dict) -> httpx.Response:
    return httpx.put(
        f"{server.vault_url(vault)}/keys/dos-{secrets.token_hex(4)}?api-version=7.4", json={"key": jwk},
        headers={"Authorization": f"Bearer {token}"}, verify=server.ssl_context, timeout=30,
    )


def test_jwk_import_with_a_huge_public_exponent_is_refused_at_once(server: Server, vault: str, vault_token: str):
    """Recovering RSA primes from (n, e, d) with a 400,000-bit e took seconds per request, holding the GIL."""
    n = secrets.randbits(2048) | (1 << 2047) | 1
    e = (1 << 400_000) + 1
    d = secrets.randbits(2040) | 1
    done = threading.Event()
    health_times: list[float] = []

    def probe() -> None:  # a reader meanwhile: must not wait behind the import
        while not done.is_set():
            t = time.monotonic()
            httpx.get(f"{server.url}/healthz", verify=server.ssl_context, timeout=30)
            health_times.append(time.monotonic() - t)
            time.sleep(0.05)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    start = time.monotonic()
    try:
        r = _import(server, vault, vault_token, {"kty": "RSA", "n": _b64u_int(n), "e": _b64u_int(e), "d": _b64u_int(d)})
    finally:
        done.set()
        t.join()
    took = time.monotonic() - start
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadParameter"
    assert "exponent" in r.json()["error"]["message"]
    assert took < 2.0 and max(health_times, default=0) < 2.0


@pytest.mark.parametrize(
    "fields, word",
    [
        ({"e": 65536}, "odd"),  # even exponent
        ({"e": 1}, "exponent"),
        ({"d": None}, "'d'"),  # d >= n, set below
    ],
)
def test_jwk_import_checks_rsa_numbers_before_arithmetic(server: Server, vault: str, vault_token: str, fields, word):
    n = secrets.randbits(2048) | (1 << 2047) | 1
    jwk = {"kty": "RSA", "n": _b64u_int(n), "e": _b64u_int(fields.get("e", 65537)),
           "d": _b64u_int(n + 2 if "d" in fields else secrets.randbits(2040) | 1)}
    r = _import(server, vault, vault_token, jwk)
    assert r.status_code == 400 and word in r.json()["error"]["message"]


def test_ec_import_with_an_out_of_range_private_value_is_refused(server: Server, vault: str, vault_token: str):
    jwk = {"kty": "EC", "crv": "P-256", "d": _b64u_int(1 << 5000)}
    r = _import(server, vault, vault_token, jwk)
    assert r.status_code == 400 and "out of range" in r.json()["error"]["message"]


def test_a_valid_rsa_import_still_works(server: Server, vault: str, admin_credential):
    from azure.keyvault.keys import JsonWebKey, KeyClient
    from cryptography.hazmat.primitives.asymmetric import rsa

    priv = rsa.generate_private_key(65537, 2048).private_numbers()
    jwk = JsonWebKey(kty="RSA", n=priv.public_numbers.n.to_bytes(256, "big"), e=b"\x01\x00\x01",
                     d=priv.d.to_bytes(256, "big"))
    key_client = KeyClient(server.vault_url(vault), admin_credential, connection_verify=server.ca)
    key = key_client.import_key(f"dos-ok-{secrets.token_hex(4)}", jwk)
    assert key.key.n == priv.public_numbers.n.to_bytes(256, "big")


@pytest.mark.parametrize("depth", [65, 100_000])
def test_deeply_nested_json_is_a_400(server: Server, vault: str, vault_token: str, depth: int):
    """Nesting past 64 levels is refused in Key Vault's shape (100,000 levels crashed the parser: a 500)."""
    body = '{"value": "x", "tags": ' + "[" * depth + "]" * depth + "}"
    r = httpx.put(f"{server.vault_url(vault)}/secrets/deep?api-version=7.4", content=body,
                  headers={"Authorization": f"Bearer {vault_token}", "Content-Type": "application/json"},
                  verify=server.ssl_context, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadParameter"
    assert "deeper than 64" in r.json()["error"]["message"]


def test_token_form_with_too_many_fields_is_refused_quickly(server: Server):
    tenant = server.admin["tenantId"]
    form = "&".join(f"f{i}=" for i in range(50_000))  # ~350 KB: under the control-plane cap
    start = time.monotonic()
    r = httpx.post(f"{server.url}/{tenant}/oauth2/v2.0/token", content=form,
                   headers={"Content-Type": "application/x-www-form-urlencoded"}, verify=server.ssl_context, timeout=30)
    assert r.status_code in (400, 401) and "error" in r.json()
    assert time.monotonic() - start < 2.0


# -- the crypto pool, in process ---------------------------------------------------------------


def test_crypto_pool_bounds_concurrency_and_refuses_past_its_queue():
    running, peak = 0, 0
    lock = threading.Lock()
    release = threading.Event()

    def job() -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release.wait(5)
        with lock:
            running -= 1
        return 1

    async def scenario() -> tuple[list, int]:
        pool = CryptoPool(workers=2, max_waiting=3)
        tasks = [asyncio.ensure_future(pool.run(job)) for _ in range(5)]
        await asyncio.sleep(0.1)
        with pytest.raises(Throttled):  # the sixth finds the pool and its queue full
            await pool.run(job)
        release.set()
        results = await asyncio.gather(*tasks)
        pool.close()
        return results, peak

    results, peak_seen = asyncio.run(scenario())
    assert results == [1] * 5 and peak_seen == 2
