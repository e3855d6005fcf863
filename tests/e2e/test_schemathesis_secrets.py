"""Property-based run of the official Key Vault secrets spec (secrets.json, 2026-04-01) against a real server.

Schemathesis generates requests for every operation of the spec (valid and invalid ones) and
checks each answer: never a 5xx, a status and content type the spec allows, and a body that
matches the spec's schema for that status. Runs are bounded so the suite stays fast.
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
from hypothesis import settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

if TYPE_CHECKING:
    from tests.conftest import Server

# The official specs are vendored (MIT) under tests/specs/, so a fresh clone needs nothing beside it.
SPECS = Path(__file__).resolve().parents[1] / "specs" / "keyvault" / "2026-04-01"
SPEC_PATH = SPECS / "secrets.json"
API_VERSION = "2026-04-01"
VAULT = "kv-schemathesis"
# Bounded for `make test` (~10 s for all twelve operations); raise it locally for a deeper hunt.
MAX_EXAMPLES = int(os.environ.get("STRONGROOM_FUZZ_EXAMPLES", "40"))

if not SPEC_PATH.is_file():
    # A missing spec must fail the run loudly, never silently drop the conformance check.
    pytest.fail(f"Official Key Vault spec not found at {SPEC_PATH} (vendored under tests/specs/).", pytrace=False)


def load_spec(path: Path) -> dict[str, Any]:
    """The official spec, with one field relaxed where the spec and the real service disagree."""
    spec = json.loads(path.read_text())
    # Real Key Vault ends every listing with `"nextLink": null` (seen in the Azure SDKs' recorded
    # sessions; the SDK pagers stop on it), while the spec types nextLink as a plain string. We match
    # the service, so null is allowed for this one field and nothing else.
    for name in ("SecretListResult", "DeletedSecretListResult"):
        spec["definitions"][name]["properties"]["nextLink"]["x-nullable"] = True
    return spec


def content_type_conformance_with_body(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """content_type_conformance, except for an empty 204.

    Swagger 2's global `produces` makes schemathesis expect `application/json` on Purge's 204 too,
    which declares no schema. Real Key Vault sends that 204 with no body and no Content-Type (as the
    Azure SDKs' recorded sessions show), and so do we.
    """
    if response.status_code == 204 and not response.content:
        return None
    return content_type_conformance(ctx, response, case)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance_with_body, response_schema_conformance]

schema = schemathesis.openapi.from_dict(load_spec(SPEC_PATH))
# Every request names a supported api-version: an unknown one is rejected before anything else is
# looked at, which would hide the rest of the request from the checks.
schema.config.update(parameters={"api-version": API_VERSION})


@dataclass
class Seeds:
    """Objects created before the run, so that some generated requests name things that exist."""

    live: list[str] = field(default_factory=list)  # read, updated, backed up
    doomed: list[str] = field(default_factory=list)  # for DeleteSecret, so it does not empty `live`
    deleted: list[str] = field(default_factory=list)  # soft-deleted: get, recover
    purgeable: list[str] = field(default_factory=list)  # soft-deleted, for PurgeDeletedSecret
    versions: list[tuple[str, str]] = field(default_factory=list)  # (name, version), "" = latest
    backup: str = ""  # the backup of a purged secret: one restore succeeds, later ones conflict


SEEDS = Seeds()
# Which pool of names each operation draws from; the rest use `live`.
POOL_BY_OPERATION = {
    "DELETE /secrets/{secret-name}": "doomed",
    "GET /deletedsecrets/{secret-name}": "deleted",
    "DELETE /deletedsecrets/{secret-name}": "purgeable",
    "POST /deletedsecrets/{secret-name}/recover": "deleted",
}


def _seeded_path_parameters(label: str, names: set[str]) -> st.SearchStrategy[dict[str, str]]:
    if "secret-version" in names:
        return st.sampled_from(SEEDS.versions).map(lambda nv: {"secret-name": nv[0], "secret-version": nv[1]})
    pool: list[str] = getattr(SEEDS, POOL_BY_OPERATION.get(label, "live"))
    return st.sampled_from(pool).map(lambda name: {"secret-name": name})


@schema.hook
def before_generate_path_parameters(
    context: schemathesis.HookContext, strategy: st.SearchStrategy
) -> st.SearchStrategy:
    """Mix seeded names (and matching versions) into generated path parameters."""
    operation = context.operation
    if operation is None:
        return strategy
    names = {p.name for p in operation.path_parameters}
    if "secret-name" not in names:
        return strategy
    # Deferred: the seeds exist only once the fixture has run, after collection.
    return st.one_of(strategy, st.deferred(lambda: _seeded_path_parameters(operation.label, names)))


@schema.hook
def before_generate_body(context: schemathesis.HookContext, strategy: st.SearchStrategy) -> st.SearchStrategy:
    """Offer RestoreSecret a real backup blob besides generated ones."""
    if context.operation is None or context.operation.label != "POST /secrets/restore":
        return strategy
    return st.one_of(strategy, st.deferred(lambda: st.just({"value": SEEDS.backup})))


def get_token(server: Server, tls: ssl.SSLContext) -> str:
    """An access token for the vault resource, as any client gets it: client credentials at the token endpoint."""
    admin = server.admin
    meta = httpx.get(f"{server.url}/strongroom/metadata", verify=tls).json()
    resp = httpx.post(
        f"{server.url}/{admin['tenantId']}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": admin["clientId"],
            "client_secret": admin["clientSecret"],
            "scope": f"{meta['vaultResource']}/.default",
        },
        verify=tls,
    )
    resp.raise_for_status()
    return resp.json()["access_token"]


@pytest.fixture(scope="module")
def fuzz_target(server: Server) -> dict[str, Any]:
    """A vault of its own, seeded with live, doomed and deleted secrets and a restorable backup."""
    server.cli("keyvault", "create", "--name", VAULT)
    tls = ssl.create_default_context(cafile=server.ca)
    base_url = server.vault_url(VAULT)
    headers = {"Authorization": f"Bearer {get_token(server, tls)}"}
    with httpx.Client(base_url=base_url, verify=tls, headers=headers, params={"api-version": API_VERSION}) as c:

        def put(name: str, value: str) -> str:
            r = c.put(f"/secrets/{name}", json={"value": value, "contentType": "text/plain", "tags": {"env": "fuzz"}})
            r.raise_for_status()
            return r.json()["id"].rsplit("/", 1)[1]

        for name in ("seed-alpha", "seed-beta", "seed-gamma"):
            for n in range(2 if name == "seed-alpha" else 1):
                SEEDS.versions.append((name, put(name, f"v{n}")))
            SEEDS.versions.append((name, ""))
            SEEDS.live.append(name)
        for n in range(4):
            put(f"seed-doomed-{n}", "x")
            SEEDS.doomed.append(f"seed-doomed-{n}")
            for pool in (SEEDS.deleted, SEEDS.purgeable):
                name = f"seed-gone-{len(SEEDS.deleted) + len(SEEDS.purgeable)}"
                put(name, "x")
                c.delete(f"/secrets/{name}").raise_for_status()
                pool.append(name)
        put("seed-restorable", "x")
        SEEDS.backup = c.post("/secrets/seed-restorable/backup").raise_for_status().json()["value"]
        c.delete("/secrets/seed-restorable").raise_for_status()
        c.delete("/deletedsecrets/seed-restorable").raise_for_status()
    # `verify` goes to requests (schemathesis' transport), which takes the CA file's path.
    return {"base_url": base_url, "headers": headers, "verify": server.ca}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None)
def test_secrets_api_conforms_to_spec(case: schemathesis.Case, fuzz_target: dict[str, Any]) -> None:
    case.call_and_validate(
        base_url=fuzz_target["base_url"],
        headers=fuzz_target["headers"],
        verify=fuzz_target["verify"],
        checks=CHECKS,
    )
