"""Schemathesis over Strongroom's own routes: ARM, Graph, directory, cluster and token endpoints (issue #10, section 6).

No official spec covers them, so tests/specs/strongroom/control-plane.yaml describes
them. Schemathesis sends valid and invalid requests (positive and negative modes) to
every operation, then runs stateful scenarios (a PUT followed by GETs and DELETEs on
what it made, links inferred from the paths), against a server of its own so the
fuzzing cannot disturb other tests. Every answer must pass `support.answer_problem`:
no 5xx, errors in a plane's shape. Path parameters mix generated values with names
that exist, so requests reach real objects too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import strategies as st

from tests.conftest import Server, start_server
from tests.fuzz.support import PHASES, REQUEST_TIMEOUT, SETTINGS, answer_problem, token

SPEC = Path(__file__).resolve().parents[1] / "specs" / "strongroom" / "control-plane.yaml"
API_VERSIONS = {"Microsoft.Authorization": "2022-04-01", "Microsoft.ManagedIdentity": "2023-01-31"}
ARM_VERSION = "2023-07-01"

schema = schemathesis.openapi.from_dict(yaml.safe_load(SPEC.read_text()))
schema.config.phases.update(phases=[*PHASES, "stateful"])  # stateful: see the last test


class Target:
    """The server under fuzzing, its tokens and the names that exist on it."""

    server: Server
    tokens: dict[str, str]
    fixed: dict[str, str]
    known: dict[str, list[str]]


TARGET = Target()
TARGET.known = {}


def headers_for(path: str) -> dict[str, str]:
    if path.startswith("/v1.0/"):
        return {"Authorization": f"Bearer {TARGET.tokens['graph']}"}
    if path.startswith(("/subscriptions/", "/clusters/", "/strongroom/")):
        return {"Authorization": f"Bearer {TARGET.tokens['arm']}"}
    return {}


def api_version(path: str) -> str:
    return next((v for k, v in API_VERSIONS.items() if k in path), ARM_VERSION)


@schema.hook
def before_generate_path_parameters(context: schemathesis.HookContext, strategy: st.SearchStrategy) -> st.SearchStrategy:
    """Real names besides generated ones, so requests reach objects that exist (subscription and tenant: see call)."""
    if context.operation is None:
        return strategy

    names = [p.name for p in context.operation.path_parameters]
    if not all(TARGET.known.get(n) or n in ("subscriptionId", "tenant") for n in names):
        return strategy

    def real() -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({n: st.sampled_from(TARGET.known.get(n) or ["-"]) for n in names})

    return st.one_of(strategy, st.deferred(real))  # deferred: the names exist only once the fixture has run


def call(case: schemathesis.Case) -> Any:
    # Every phase (the coverage phase's explicit examples too) names our subscription and tenant.
    case.path_parameters = {**(case.path_parameters or {}),
                            **{k: v for k, v in TARGET.fixed.items() if k in (case.path_parameters or {})}}
    case.query = {**(case.query or {})}
    if case.path.startswith("/subscriptions/"):
        case.query["api-version"] = api_version(case.path)
    return case.call(base_url=TARGET.server.url, headers=headers_for(case.path), verify=TARGET.server.ca,
                     timeout=REQUEST_TIMEOUT)


def check(response: Any, case: schemathesis.Case) -> None:
    content_type = (response.headers.get("content-type") or [""])[0]
    problem = answer_problem(response.status_code, content_type, response.content)
    assert problem is None, f"{case.method} {case.formatted_path}: {problem}\n{case.as_curl_command()}"


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Target:
    server = start_server(tmp_path_factory.mktemp("fuzz-control"))
    try:
        meta = httpx.get(f"{server.url}/strongroom/metadata", verify=server.ssl_context).json()
        TARGET.server = server
        TARGET.tokens = {"arm": token(server, "https://management.azure.com/.default"),
                         "graph": token(server, "https://graph.microsoft.com/.default")}
        TARGET.fixed = {"subscriptionId": meta["subscriptionId"], "tenant": meta["tenantId"]}
        arm = {"Authorization": f"Bearer {TARGET.tokens['arm']}"}
        base = f"{server.url}/subscriptions/{meta['subscriptionId']}/resourceGroups/rg-fuzz/providers"
        with httpx.Client(verify=server.ssl_context, timeout=30) as c:
            c.put(f"{base}/Microsoft.KeyVault/vaults/srkv-fuzz", params={"api-version": ARM_VERSION}, headers=arm,
                  json={"location": "local", "properties": {}}).raise_for_status()
            c.put(f"{base}/Microsoft.ManagedIdentity/userAssignedIdentities/id-fuzz",
                  params={"api-version": API_VERSIONS["Microsoft.ManagedIdentity"]}, headers=arm,
                  json={"location": "local"}).raise_for_status()
            app = c.post(f"{server.url}/v1.0/applications", headers=headers_for("/v1.0/"),
                         json={"displayName": "fuzz-app"}).raise_for_status().json()
            c.post(f"{server.url}/clusters/local/api/v1/namespaces/fuzz/serviceaccounts", headers=arm,
                   json={"metadata": {"name": "sa-fuzz"}}).raise_for_status()
        TARGET.known = {"resourceGroupName": ["rg-fuzz"], "vaultName": ["srkv-fuzz"], "identityName": ["id-fuzz"],
                        "appId": [app["id"], app["appId"]], "namespace": ["fuzz"], "saName": ["sa-fuzz"],
                        "location": ["local"], "roleGuid": ["4633458b-17de-408a-b874-0445c86b69e6"]}
        yield TARGET
    finally:
        server.stop()


@schema.parametrize()
@SETTINGS
def test_control_plane_answers_every_request_without_a_server_error(case: schemathesis.Case, target: Target) -> None:
    check(call(case), case)


def test_control_plane_stateful_scenarios_never_fail(target: Target) -> None:
    class Scenarios(schema.as_state_machine()):  # type: ignore[misc]
        def call(self, case: schemathesis.Case, **kwargs: Any) -> Any:
            return call(case)

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            check(response, case)

    Scenarios.run(settings=SETTINGS)
