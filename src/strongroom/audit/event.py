"""AuditEvent records in the shape Azure Key Vault writes to its diagnostic logs.

Field names and conventions follow Azure's AuditEvent category
(`insights-logs-auditevent`): upper-case `resourceId`, `resultSignature` as the
HTTP status text, `identity.claim` holding token claims and `properties` holding
the request details. Two Azure habits are kept on purpose:

- `resultType` is "Success" whenever the service answered the request, even with
  401 or 403; the outcome is in `resultSignature`/`httpStatusCode` (real Azure
  records of denied calls read `"resultType": "Success"`). Only a server-side
  failure (5xx) is "Failure".
- a request that fails authentication (401) is recorded as operationName
  "Authentication", as Key Vault logs the bearer challenge.

Nothing from the request body is recorded; query values other than a few known
harmless ones are masked.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, quote

OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
# Query parameters whose values are recorded; any other value is masked.
SAFE_QUERY = frozenset({"api-version", "maxresults", "$skiptoken", "$top", "$filter", "$expand"})
MASK = "REDACTED"
MAX_FIELD = 2048


@functools.lru_cache(maxsize=4)
def _second(whole: int) -> str:
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def azure_time(ts: float) -> str:
    """`2016-01-05T01:32:01.2691226Z`: UTC with 7 fractional digits, as Azure writes it."""
    whole = int(ts)
    return f"{_second(whole)}{int((ts - whole) * 1_000_000):06d}0Z"  # formatting a second once, not per record


@functools.lru_cache(maxsize=128)
def status_text(status: int) -> str:
    """HTTP status text without spaces, as Azure's resultSignature: "OK", "Forbidden", "NotFound"."""
    try:
        return HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
    except ValueError:
        return str(status)


def result_type(status: int) -> str:
    return "Failure" if status >= 500 else "Success"


def identity_claims(caller: Mapping[str, str] | None) -> dict[str, str]:
    """identity.claim: the verified claims under the names Azure uses for them."""
    if not caller:
        return {}
    claim: dict[str, str] = {}
    if "oid" in caller:
        claim[OBJECT_ID_CLAIM] = caller["oid"]
        claim["oid"] = caller["oid"]
    for name in ("appid", "tid", "idtyp", "xms_mirid"):
        if name in caller:
            claim[name] = caller[name]
    return claim


def _clip(value: str) -> str:
    return value if len(value) <= MAX_FIELD else value[:MAX_FIELD]


@functools.lru_cache(maxsize=256)
def _query(raw_query: bytes) -> tuple[str, str]:
    """(api-version, the query as recorded): values masked unless known to be harmless.

    Remembered per query string: most requests repeat a handful of them ("api-version=7.4").
    """
    pairs = parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True)
    api_version = next((v for k, v in pairs if k == "api-version"), "")
    if all(name.lower() in SAFE_QUERY for name, _ in pairs):
        return api_version, raw_query.decode("latin-1")
    return api_version, "&".join(
        f"{quote(name, safe='$-._~')}={quote(value, safe='-._~:/') if name.lower() in SAFE_QUERY else MASK}"
        for name, value in pairs
    )


AUTHENTICATION_FIELDS = (
    "grantType", "clientId", "credentialType", "resource", "federatedCredential", "certificateThumbprint",
    "assertion", "result",
)


def _details(auth: Mapping[str, Any]) -> dict[str, Any]:
    """A sign-in's details (see docs/audit.md): known fields only, strings clipped; never a credential."""
    out: dict[str, Any] = {}
    for name in AUTHENTICATION_FIELDS:
        value = auth.get(name)
        if isinstance(value, str):
            out[name] = _clip(value)
        elif name == "assertion" and isinstance(value, Mapping):  # the presented assertion's iss/sub/aud, unverified
            out[name] = {k: _clip(v) if isinstance(v, str) else None for k, v in value.items() if k in ("iss", "sub", "aud")}
    return out


def request_uri(scheme: str, host: str, raw_path: bytes, raw_query: bytes) -> str:
    """The request URI as received, with query values masked unless known to be harmless."""
    uri = f"{scheme}://{host}{raw_path.decode('latin-1')}"
    if raw_query:
        uri += "?" + _query(raw_query)[1]
    return _clip(uri)


_WANTED = frozenset({b"host", b"user-agent", b"x-ms-client-request-id", b"client-request-id"})


def _headers(headers: list[tuple[bytes, bytes]]) -> dict[bytes, str]:
    """The few request headers a record uses, in one pass (the first of each wins)."""
    found: dict[bytes, str] = {}
    for k, v in headers:
        if k in _WANTED and k not in found:
            found[k] = v.decode("latin-1")
    return found


def tls_version(scope: Mapping[str, Any]) -> str | None:
    """"TLS1_2"/"TLS1_3" from the ASGI TLS extension, when the server provides it."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    version = tls.get("tls_version")
    if isinstance(version, int) and 0x0301 <= version <= 0x0304:
        return f"TLS1_{version - 0x0301}"
    return None


def build(
    facts: Mapping[str, Any],
    scope: Mapping[str, Any],
    *,
    status: int,
    started: float,
    duration_ms: int,
    description: str = "",
) -> dict[str, Any]:
    """One AuditEvent from a request's facts, its ASGI scope and how it was answered."""
    headers = _headers(scope.get("headers") or [])
    host = headers.get(b"host", "")
    query = scope.get("query_string") or b""
    api_version = _query(query)[0] if query else ""
    raw_path = scope.get("raw_path") or quote(scope.get("path", "")).encode()
    operation = "Authentication" if status == 401 else facts["operationName"]
    client = scope.get("client")
    properties: dict[str, Any] = {
        "id": facts.get("id"),
        "clientInfo": _clip(headers.get(b"user-agent", "")),
        "httpStatusCode": status,
        "requestUri": request_uri(scope.get("scheme", "https"), host, raw_path, query),
        "isRbacAuthorized": facts.get("isRbacAuthorized"),
        "appliedAssignmentId": facts.get("appliedAssignmentId"),
        "tlsVersion": tls_version(scope),
        "requestId": scope.get("strongroom.request_id"),
    }
    if "isAccessPolicyMatch" in facts:
        properties["isAccessPolicyMatch"] = facts["isAccessPolicyMatch"]
    if isinstance(facts.get("authentication"), Mapping):
        properties["authentication"] = _details(facts["authentication"])
    return {
        "time": azure_time(started),
        "resourceId": (facts.get("resourceId") or "").upper(),
        "operationName": operation,
        "operationVersion": _clip(facts.get("operationVersion") or api_version)[:64],
        "category": "AuditEvent",
        "resultType": result_type(status),
        "resultSignature": status_text(status),
        "resultDescription": _clip(description),
        "durationMs": duration_ms,
        "callerIpAddress": client[0] if client else "",
        # MSAL names the same header client-request-id on token requests.
        "correlationId": _clip(headers.get(b"x-ms-client-request-id") or headers.get(b"client-request-id", "")),
        "identity": {"claim": identity_claims(facts.get("caller"))},
        "properties": properties,
    }


def error_message(body: bytes) -> str:
    """resultDescription for an error answer: the message of any plane's shape (strongroom.errors.render).

    Key Vault's, ARM's and Graph's error.message, Entra's error_description, a Kubernetes Status's message.
    """
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(doc, dict):
        return ""
    err = doc.get("error")
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return err["message"]
    if isinstance(doc.get("error_description"), str):
        return doc["error_description"]
    if doc.get("kind") == "Status" and isinstance(doc.get("message"), str):
        return doc["message"]
    return ""


def build_intent(facts: Mapping[str, Any], scope: Mapping[str, Any], *, started: float, duration_ms: int) -> dict[str, Any]:
    """The record written (and fsynced) before a request's first change is committed (see `strongroom.audit.intent`).

    It says what is about to be done and by whom; the outcome record, with the
    status, follows under the same requestId. A Strongroom addition: Azure writes
    only the outcome.
    """
    event = build({"operationName": "Unknown", **facts}, scope, status=0, started=started, duration_ms=duration_ms)
    event["resultType"] = "Started"
    event["resultSignature"] = "Started"
    event["properties"]["httpStatusCode"] = None
    event["properties"]["auditStage"] = "intent"
    return event
