"""What every fuzz run shares: its budget, the tokens it calls with, and the one check it makes of every answer.

The check: never a 5xx, and an error answer is JSON in one of the shapes our planes
use (Key Vault / ARM / Graph `{"error": {"code", "message"}}`, OAuth
`{"error": "...", "error_description": ...}`, a Kubernetes Status), so a client
always gets something it can parse: no stack trace, no HTML, no empty 400.

Budget: `STRONGROOM_FUZZ_EXAMPLES` examples per operation (a few in `make test`,
hundreds in `make fuzz`); `STRONGROOM_FUZZ_STEPS` steps per stateful scenario;
`STRONGROOM_FUZZ_PHASES` the schemathesis phases (`make fuzz` adds `coverage`).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from hypothesis import HealthCheck, settings

from tests.conftest import Server

EXAMPLES = int(os.environ.get("STRONGROOM_FUZZ_EXAMPLES", "6"))
STEPS = int(os.environ.get("STRONGROOM_FUZZ_STEPS", "6"))
# Schemathesis' coverage phase sends ~200 boundary requests per operation: `make fuzz` adds it.
PHASES = os.environ.get("STRONGROOM_FUZZ_PHASES", "examples,fuzzing").split(",")
REQUEST_TIMEOUT = 15.0  # a hang fails the run instead of stalling it

SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False,
                    database=None, stateful_step_count=STEPS)


def token(server: Server, scope: str) -> str:
    a = server.admin
    r = httpx.post(f"{server.url}/{a['tenantId']}/oauth2/v2.0/token", verify=server.ssl_context, data={
        "grant_type": "client_credentials", "client_id": a["clientId"], "client_secret": a["clientSecret"], "scope": scope,
    })
    r.raise_for_status()
    return r.json()["access_token"]


def answer_problem(status: int, content_type: str, body: bytes) -> str | None:
    """None when the answer is acceptable, else what is wrong with it."""
    if status >= 500:
        return f"server error {status}: {body[:200]!r}"
    if status < 400 or not body:
        return None  # 401/405/404 without a body are allowed (HEAD, challenges carry headers)
    if "json" not in content_type:
        return f"{status} with content type {content_type!r}: {body[:200]!r}"
    import json

    try:
        doc: Any = json.loads(body)
    except ValueError:
        return f"{status} with a body that is not JSON: {body[:200]!r}"
    if not isinstance(doc, dict):
        return f"{status} with a body that is not an object: {body[:200]!r}"
    err = doc.get("error")
    if isinstance(err, dict) and isinstance(err.get("code"), str) and isinstance(err.get("message"), str):
        return None
    if isinstance(err, str):
        return None  # OAuth
    if doc.get("kind") == "Status" and doc.get("code") == status:
        return None  # Kubernetes
    if isinstance(doc.get("statusCode"), int) and "message" in doc:
        return None  # App Service's managed-identity endpoint
    return f"{status} without an error shape: {body[:200]!r}"
