"""Property-based run of the official Key Vault keys spec (keys.json, 2026-04-01) against a real server.

As tests/e2e/test_schemathesis_secrets.py does for secrets: schemathesis generates
valid and invalid requests for every operation of the spec and checks each answer
(never a 5xx, a status and content type the spec allows, a body matching the
schema). Some generated requests name seeded keys, so the checks reach real
objects. Bounded (STRONGROOM_FUZZ_EXAMPLES, default 12 per operation) to about 30 s.
"""

from __future__ import annotations

import json
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.test_schemathesis_secrets import content_type_conformance_with_body, get_token

if TYPE_CHECKING:
    from tests.conftest import Server

SPEC_PATH = Path(__file__).resolve().parents[2] / "specs" / "keyvault" / "2026-04-01" / "keys.json"
API_VERSION = "2026-04-01"
VAULT = "kv-fuzz-keys"
MAX_EXAMPLES = int(os.environ.get("STRONGROOM_FUZZ_EXAMPLES", "12"))

if not SPEC_PATH.is_file():
    pytest.fail(f"Official Key Vault spec not found at {SPEC_PATH} (vendored under tests/specs/).", pytrace=False)


def load_spec(path: Path) -> dict[str, Any]:
    """The official spec, relaxed only where the spec and the real service disagree.

    Real Key Vault ends every listing with `"nextLink": null` (the SDKs' pagers stop
    on it); the spec types nextLink as a plain string.
    """
    spec = json.loads(path.read_text())
    for name in ("KeyListResult", "DeletedKeyListResult"):
        spec["definitions"][name]["properties"]["nextLink"]["x-nullable"] = True
    return spec


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance_with_body, response_schema_conformance]
assert content_type_conformance  # the 204 exemption wraps it (see the secrets run)

schema = schemathesis.openapi.from_dict(load_spec(SPEC_PATH))
schema.config.update(parameters={"api-version": API_VERSION})


@dataclass
class Seeds:
    live: list[str] = field(default_factory=list)
    doomed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    purgeable: list[str] = field(default_factory=list)
    versions: list[tuple[str, str]] = field(default_factory=list)
    backup: str = ""


SEEDS = Seeds()
POOL_BY_OPERATION = {
    "DELETE /keys/{key-name}": "doomed",
    "GET /deletedkeys/{key-name}": "deleted",
    "DELETE /deletedkeys/{key-name}": "purgeable",
    "POST /deletedkeys/{key-name}/recover": "deleted",
}


def _seeded(label: str, names: set[str]) -> st.SearchStrategy[dict[str, str]]:
    if "key-version" in names:
        return st.sampled_from(SEEDS.versions).map(lambda nv: {"key-name": nv[0], "key-version": nv[1]})
    pool: list[str] = getattr(SEEDS, POOL_BY_OPERATION.get(label, "live"))
    return st.sampled_from(pool).map(lambda name: {"key-name": name})


@schema.hook
def before_generate_path_parameters(context: schemathesis.HookContext, strategy: st.SearchStrategy) -> st.SearchStrategy:
    operation = context.operation
    if operation is None:
        return strategy
    names = {p.name for p in operation.path_parameters}
    if "key-name" not in names:
        return strategy
    return st.one_of(strategy, st.deferred(lambda: _seeded(operation.label, names)))


@schema.hook
def before_generate_body(context: schemathesis.HookContext, strategy: st.SearchStrategy) -> st.SearchStrategy:
    """Offer real bodies besides generated ones: a backup blob to restore, sign/encrypt requests that fit the keys."""
    if context.operation is None:
        return strategy
    label = context.operation.label
    if label == "POST /keys/restore":
        return st.one_of(strategy, st.deferred(lambda: st.just({"value": SEEDS.backup})))
    if label.endswith("/sign"):
        return st.one_of(strategy, st.just({"alg": "RS256", "value": "A" * 43}), st.just({"alg": "ES256", "value": "A" * 43}))
    if label.endswith(("/encrypt", "/wrapkey")):
        return st.one_of(strategy, st.just({"alg": "RSA-OAEP-256", "value": "AAAA"}), st.just({"alg": "A256GCM", "value": "AAAA"}))
    if label == "POST /keys/{key-name}/create":
        return st.one_of(strategy, st.sampled_from([{"kty": "EC", "crv": "P-256"}, {"kty": "oct", "key_size": 128}]))
    return strategy


@pytest.fixture(scope="module")
def fuzz_target(server: Server) -> dict[str, Any]:
    server.cli("keyvault", "create", "--name", VAULT)
    tls = ssl.create_default_context(cafile=server.ca)
    base_url = server.vault_url(VAULT)
    headers = {"Authorization": f"Bearer {get_token(server, tls)}"}
    with httpx.Client(base_url=base_url, verify=tls, headers=headers, params={"api-version": API_VERSION}) as c:

        def create(name: str, body: dict) -> str:
            r = c.post(f"/keys/{name}/create", json={**body, "tags": {"env": "fuzz"}})
            r.raise_for_status()
            return r.json()["key"]["kid"].rsplit("/", 1)[1]

        for name, body in (("seed-rsa", {"kty": "RSA"}), ("seed-ec", {"kty": "EC", "crv": "P-256"}),
                           ("seed-oct", {"kty": "oct", "key_size": 256})):
            SEEDS.versions.append((name, create(name, body)))
            SEEDS.versions.append((name, ""))
            SEEDS.live.append(name)
        for n in range(4):
            create(f"seed-doomed-{n}", {"kty": "EC"})
            SEEDS.doomed.append(f"seed-doomed-{n}")
            for pool in (SEEDS.deleted, SEEDS.purgeable):
                name = f"seed-gone-{len(SEEDS.deleted) + len(SEEDS.purgeable)}"
                create(name, {"kty": "EC"})
                c.delete(f"/keys/{name}").raise_for_status()
                pool.append(name)
        create("seed-restorable", {"kty": "EC"})
        SEEDS.backup = c.post("/keys/seed-restorable/backup").raise_for_status().json()["value"]
        c.delete("/keys/seed-restorable").raise_for_status()
        c.delete("/deletedkeys/seed-restorable").raise_for_status()
    return {"base_url": base_url, "headers": headers, "verify": server.ca}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_keys_api_conforms_to_spec(case: schemathesis.Case, fuzz_target: dict[str, Any]) -> None:
    case.call_and_validate(
        base_url=fuzz_target["base_url"], headers=fuzz_target["headers"], verify=fuzz_target["verify"], checks=CHECKS
    )
