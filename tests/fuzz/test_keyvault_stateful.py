"""Stateful schemathesis over the three official Key Vault specs (issue #10, section 6).

tests/e2e, tests/keyvault/keys and tests/keyvault/certificates already run each spec's operations one at
a time in positive and negative modes with the conformance checks. This adds
sequences: schemathesis infers links between operations (a set or create, then the
get, update, delete, recover and purge of what it made, by name and version) and runs
scenarios of `STRONGROOM_FUZZ_STEPS` steps against a vault of its own. Every answer
must pass `support.answer_problem` (no 5xx, Key Vault's error shape).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from tests.conftest import Server
from tests.e2e.test_schemathesis_secrets import get_token
from tests.e2e.test_schemathesis_secrets import load_spec as secrets_spec
from tests.fuzz.support import REQUEST_TIMEOUT, SETTINGS, answer_problem
from tests.keyvault.certificates.test_schemathesis_certificates import load_spec as certificates_spec
from tests.keyvault.keys.test_schemathesis_keys import load_spec as keys_spec

SPECS = Path(__file__).resolve().parents[1] / "specs" / "keyvault" / "2026-04-01"
API_VERSION = "2026-04-01"
VAULT = "kv-fuzz-stateful"


@pytest.fixture(scope="module")
def vault_target(server: Server) -> dict[str, Any]:
    server.cli("keyvault", "create", "--name", VAULT)
    tls = ssl.create_default_context(cafile=server.ca)
    return {"base_url": server.vault_url(VAULT), "verify": server.ca,
            "headers": {"Authorization": f"Bearer {get_token(server, tls)}"}}


@pytest.mark.parametrize("name,load", [("secrets", secrets_spec), ("keys", keys_spec), ("certificates", certificates_spec)])
def test_keyvault_stateful_scenarios_never_fail(vault_target: dict[str, Any], name: str, load: Any) -> None:
    schema = schemathesis.openapi.from_dict(load(SPECS / f"{name}.json"))
    schema.config.update(parameters={"api-version": API_VERSION})

    class Scenarios(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {**vault_target, "timeout": REQUEST_TIMEOUT}

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            content_type = (response.headers.get("content-type") or [""])[0]
            problem = answer_problem(response.status_code, content_type, response.content)
            assert problem is None, f"{case.method} {case.formatted_path}: {problem}"

    Scenarios.run(settings=SETTINGS)
