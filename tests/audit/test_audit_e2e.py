"""The audit log of a real server, driven by the official SDK, httpx and the CLI.

One dedicated server for this module: the tests break its audit sink and tamper
with copies of its log, which the shared session server must not see.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import ssl
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

from tests.conftest import STRONGROOM, Server, start_server
from tests.e2e.test_no_plaintext import find_leaks

VAULT = "kv-audit"


@pytest.fixture(scope="module")
def srv(tmp_path_factory) -> Server:
    s = start_server(tmp_path_factory.mktemp("audit"))
    s.cli("keyvault", "create", "--name", VAULT)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def credential(srv: Server) -> ClientSecretCredential:
    a = srv.admin
    return ClientSecretCredential(
        a["tenantId"], a["clientId"], a["clientSecret"], authority=srv.url, disable_instance_discovery=True,
        connection_verify=srv.ca,
    )


@pytest.fixture(scope="module")
def canary() -> str:
    return f"AUDIT-CANARY-{uuid.uuid4()}"


@pytest.fixture(scope="module")
def session(srv: Server, credential, canary: str) -> dict[str, str]:
    """A scripted SDK session; returns the x-ms-client-request-id of each call."""
    client = SecretClient(srv.vault_url(VAULT), credential, connection_verify=srv.ca)
    ids = {op: str(uuid.uuid4()) for op in ("SecretSet", "SecretGet", "SecretList")}
    client.set_secret("db-password", canary, request_id=ids["SecretSet"])
    assert client.get_secret("db-password", request_id=ids["SecretGet"]).value == canary
    assert "db-password" in [p.name for p in client.list_properties_of_secrets(request_id=ids["SecretList"])]
    ids["NoToken"] = str(uuid.uuid4())
    r = httpx.get(
        f"{srv.vault_url(VAULT)}/secrets/db-password?api-version=7.6",
        headers={"x-ms-client-request-id": ids["NoToken"]}, verify=srv.ssl_context,
    )
    assert r.status_code == 401
    return ids


def audit_list(srv: Server, *args: str) -> list[dict]:
    return srv.cli_json("audit", "list", *args)


def by_correlation(records: list[dict], cid: str) -> list[dict]:
    return [r for r in records if r["correlationId"] == cid]


def bearer(credential) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential.get_token('https://vault.azure.net/.default').token}"}


def test_every_call_of_a_session_is_recorded_once_with_azure_fields(srv: Server, session: dict[str, str]):
    records = audit_list(srv, "--vault", VAULT)
    admin = srv.admin
    # The SDK's first call goes out without a token and is challenged, as with Azure: Key Vault
    # records that 401 as "Authentication", then the call itself.
    first = by_correlation(records, session["SecretSet"])
    # A change is preceded by its intent record (fsynced before the commit), then its outcome.
    assert [(r["operationName"], r["properties"]["httpStatusCode"], r["properties"].get("auditStage")) for r in first] == [
        ("Authentication", 401, None), ("SecretSet", None, "intent"), ("SecretSet", 200, None),
    ]
    assert first[1]["resultType"] == "Started" and first[1]["properties"]["requestId"] == first[2]["properties"]["requestId"]
    for op in ("SecretGet", "SecretList"):
        assert [r["operationName"] for r in by_correlation(records, session[op])] == [op]
    (no_token,) = by_correlation(records, session["NoToken"])
    assert (no_token["operationName"], no_token["resultSignature"]) == ("Authentication", "Unauthorized")
    assert no_token["identity"]["claim"] == {}
    assert "Bearer" in no_token["resultDescription"]

    (get,) = by_correlation(records, session["SecretGet"])
    vault = srv.cli_json("keyvault", "show", "--name", VAULT)
    assert get["resourceId"] == vault["id"].upper()
    assert get["category"] == "AuditEvent"
    assert (get["resultType"], get["resultSignature"], get["resultDescription"]) == ("Success", "OK", "")
    assert get["operationVersion"] in ("7.6", "2025-07-01", "2026-04-01")
    assert isinstance(get["durationMs"], int) and get["durationMs"] >= 0
    assert get["callerIpAddress"] == "127.0.0.1"
    assert get["time"].endswith("Z") and len(get["time"]) == len("2026-01-05T01:32:01.2691226Z")
    claim = get["identity"]["claim"]
    assert claim["appid"] == admin["clientId"]
    assert claim["oid"] == claim["http://schemas.microsoft.com/identity/claims/objectidentifier"]
    assert claim["tid"] == admin["tenantId"]
    props = get["properties"]
    assert props["id"] == f"{srv.vault_url(VAULT)}/secrets/db-password"
    assert props["requestUri"].startswith(f"{srv.vault_url(VAULT)}/secrets/db-password/?api-version=")
    assert props["httpStatusCode"] == 200 and props["isRbacAuthorized"] is True
    assert props["tlsVersion"] == "TLS1_3"
    assert props["clientInfo"].startswith("azsdk-python-keyvault-secrets/")
    assert props["appliedAssignmentId"] is None or isinstance(props["appliedAssignmentId"], str)


def test_a_denied_caller_is_recorded_with_its_claims(srv: Server):
    """A principal the vault never granted anything: 403, recorded as Azure records a denial."""
    sp = srv.cli_json("ad", "sp", "create-for-rbac", "--name", "audit-outsider")
    outsider = ClientSecretCredential(
        sp["tenant"], sp["appId"], sp["password"], authority=srv.url, disable_instance_discovery=True,
        connection_verify=srv.ca,
    )
    cid = str(uuid.uuid4())
    r = httpx.get(
        f"{srv.vault_url(VAULT)}/secrets/db-password?api-version=7.6", verify=srv.ssl_context,
        headers={**bearer(outsider), "x-ms-client-request-id": cid},
    )
    assert r.status_code == 403
    (rec,) = by_correlation(audit_list(srv, "--caller", sp["appId"]), cid)
    assert (rec["operationName"], rec["resultType"], rec["resultSignature"]) == ("SecretGet", "Success", "Forbidden")
    assert rec["properties"]["httpStatusCode"] == 403 and rec["properties"]["isRbacAuthorized"] is False
    assert rec["identity"]["claim"]["appid"] == sp["appId"]
    assert rec["resultDescription"].startswith("Caller is not authorized to perform action on resource.")
    assert audit_list(srv, "--result", "Forbidden", "--caller", sp["appId"]) == [rec]


def test_a_granted_caller_is_recorded_with_the_assignment_that_granted_it(srv: Server):
    sp = srv.cli_json("ad", "sp", "create-for-rbac", "--name", "audit-reader")
    vault_id = srv.cli_json("keyvault", "show", "--name", VAULT)["id"]
    created = srv.cli_json(
        "role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", sp["appId"], "--scope", vault_id
    )
    reader = ClientSecretCredential(
        sp["tenant"], sp["appId"], sp["password"], authority=srv.url, disable_instance_discovery=True,
        connection_verify=srv.ca,
    )
    cid = str(uuid.uuid4())
    r = httpx.get(
        f"{srv.vault_url(VAULT)}/secrets/db-password?api-version=7.6", verify=srv.ssl_context,
        headers={**bearer(reader), "x-ms-client-request-id": cid},
    )
    assert r.status_code == 200
    (rec,) = by_correlation(audit_list(srv, "--caller", sp["appId"]), cid)
    assert rec["properties"]["isRbacAuthorized"] is True
    assert rec["properties"]["appliedAssignmentId"] in (created["id"], created["name"])


def test_the_record_carries_the_response_request_id_and_tls_version(srv: Server, credential):
    tls12 = ssl.create_default_context(cafile=srv.ca)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    r = httpx.get(f"{srv.vault_url(VAULT)}/secrets?api-version=7.6", headers=bearer(credential), verify=tls12)
    assert r.status_code == 200
    (rec,) = audit_list(srv, "--last", "1")
    assert rec["properties"]["requestId"] == r.headers["x-ms-request-id"]
    assert rec["operationName"] == "SecretList" and rec["properties"]["tlsVersion"] == "TLS1_2"


def test_query_values_that_might_be_secret_are_masked(srv: Server, credential):
    url = f"{srv.vault_url(VAULT)}/secrets?api-version=7.6&maxresults=2&sig=hunter2"
    assert httpx.get(url, headers=bearer(credential), verify=srv.ssl_context).status_code == 200
    (rec,) = audit_list(srv, "--last", "1")
    assert rec["properties"]["requestUri"].endswith("?api-version=7.6&maxresults=2&sig=REDACTED")


def test_management_calls_are_recorded(srv: Server):
    vault_id = srv.cli_json("keyvault", "list")[0]["id"]  # VaultList
    group = vault_id.split("/")[4]
    srv.cli("keyvault", "show", "--name", VAULT, "-g", group)  # VaultGet
    (lst, show) = audit_list(srv, "--operation", "VaultList,VaultGet", "--last", "2")
    assert lst["operationName"] == "VaultList" and lst["properties"]["httpStatusCode"] == 200
    assert show["operationName"] == "VaultGet" and show["resourceId"] == vault_id.upper()
    assert show["properties"]["id"] == srv.vault_url(VAULT) + "/"
    assert show["identity"]["claim"]["appid"] == srv.admin["clientId"]


def test_secret_values_never_reach_the_audit_log(srv: Server, session, canary: str):
    db = sqlite3.connect(srv.state_dir / "strongroom-audit.db")  # the audit table's own database (audit/table.py)
    rows = [bytes(v) for (v,) in db.execute("SELECT value FROM log WHERE stream = 'audit'")]
    db.close()
    assert len(rows) >= 5
    assert not find_leaks(canary, [srv.state_dir / "audit.jsonl"])
    assert not any(canary.encode() in row for row in rows)
    assert not any(b"eyJ" in row for row in rows)  # no JWT (base64url of '{"') in the table either
    assert b"eyJ" not in (srv.state_dir / "audit.jsonl").read_bytes()


def test_list_filters(srv: Server, session):
    admin = srv.admin
    gets = audit_list(srv, "--operation", "SecretGet")
    assert gets and {r["operationName"] for r in gets} == {"SecretGet"}
    two = audit_list(srv, "--operation", "secretget,SecretList")
    assert {r["operationName"] for r in two} == {"SecretGet", "SecretList"}
    refused = audit_list(srv, "--result", "Unauthorized")
    assert refused and {r["properties"]["httpStatusCode"] for r in refused} == {401}
    assert audit_list(srv, "--result", "401") == refused
    mine = audit_list(srv, "--caller", admin["clientId"])
    assert mine and all(r["identity"]["claim"]["appid"] == admin["clientId"] for r in mine)
    assert 401 not in {r["properties"]["httpStatusCode"] for r in mine}  # refused callers have no claims
    assert audit_list(srv, "--vault", "no-such-vault") == []
    assert audit_list(srv, "--since", "2999-01-01T00:00:00Z") == []
    assert len(audit_list(srv, "--since", "1h")) == len(audit_list(srv))
    table = srv.cli("audit", "list", "--operation", "SecretGet", "-o", "table").stdout
    assert "Operation" in table and "SecretGet" in table
    bad = srv.cli("audit", "list", "--since", "yesterday", check=False)
    assert bad.returncode != 0 and "--since" in bad.stderr


def test_untouched_log_verifies(srv: Server, session):
    out = srv.cli_json("audit", "verify")
    (chain,) = out["chains"]
    assert out["ok"] is True and out["problem"] is None
    assert chain["file"].endswith("audit.jsonl") and chain["records"] == chain["table_records"] >= 5
    assert chain["head"]["seq"] == chain["records"] == out["records"]


def _copy_state(srv: Server, dest: Path) -> Path:
    dest.mkdir()
    for name in ("admin.json", "audit.jsonl"):
        shutil.copy2(srv.state_dir / name, dest / name)
    for db in ("strongroom.db", "strongroom-audit.db"):
        src = sqlite3.connect(srv.state_dir / db)
        dst = sqlite3.connect(dest / db)
        src.backup(dst)
        src.close()
        dst.close()
    return dest


def _verify(state: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "STRONGROOM_STATE_DIR": str(state)}
    return subprocess.run([*STRONGROOM, "audit", "verify"], capture_output=True, text=True, env=env, timeout=60)


def _edit_lines(state: Path, edit) -> None:
    path = state / "audit.jsonl"
    lines = path.read_bytes().splitlines()
    edit(lines)
    path.write_bytes(b"".join(x + b"\n" for x in lines))


@pytest.mark.parametrize(
    "case, edit, line, kind",
    [
        ("alter", lambda ls: ls.__setitem__(2, ls[2].replace(b'"127.0.0.1"', b'"10.9.8.7"', 1)), 3, "altered"),
        ("delete", lambda ls: ls.__delitem__(2), 3, "removed"),
        ("insert", lambda ls: ls.insert(4, ls[1]), 5, "inserted"),
    ],
)
def test_tampering_is_named(srv: Server, session, tmp_path: Path, case, edit, line, kind):
    state = _copy_state(srv, tmp_path / case)
    assert _verify(state).returncode == 0
    _edit_lines(state, edit)
    proc = _verify(state)
    assert proc.returncode != 0
    problem = json.loads(proc.stdout)["problem"]
    assert (problem["line"], problem["kind"]) == (line, kind)
    assert f"line {line}" in proc.stderr and "AuditLogTampered" in proc.stderr


def test_unwritable_audit_log_fails_reads_closed(srv: Server, session, credential, canary: str):
    url = f"{srv.vault_url(VAULT)}/secrets/db-password?api-version=7.6"
    log = srv.state_dir / "audit.jsonl"
    aside = srv.state_dir / "audit.jsonl.aside"
    headers = bearer(credential)
    before = srv.cli_json("audit", "verify")["records"]
    log.rename(aside)
    log.symlink_to("/dev/full")  # every write: ENOSPC, as on a full disk
    try:
        r = httpx.get(url, headers=headers, verify=srv.ssl_context)
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "ServiceUnavailable"
        assert canary not in r.text and r.headers["x-ms-request-id"]
        assert httpx.get(f"{srv.url}/healthz", verify=srv.ssl_context).status_code == 200  # unaudited: still up
    finally:
        log.unlink()
        aside.rename(log)
    r = httpx.get(url, headers=headers, verify=srv.ssl_context)
    assert r.status_code == 200 and r.json()["value"] == canary
    out = srv.cli_json("audit", "verify")
    assert out["ok"] and out["records"] == before + 1  # the refused read left no record; the next one did


def test_workers_keep_verifiable_chains(tmp_path: Path):
    s = start_server(tmp_path, "--workers", "2")
    try:
        s.cli("keyvault", "create", "--name", "kvw")
        a = s.admin
        token = httpx.post(
            f"{s.url}/{a['tenantId']}/oauth2/v2.0/token", verify=s.ssl_context,
            data={"grant_type": "client_credentials", "client_id": a["clientId"], "client_secret": a["clientSecret"],
                  "scope": "https://vault.azure.net/.default"},
        ).json()["access_token"]

        def burst(_: int) -> set[int]:
            with httpx.Client(verify=s.ssl_context, headers={"Authorization": f"Bearer {token}"}) as c:
                return {c.get(f"{s.vault_url('kvw')}/secrets?api-version=7.6").status_code for _ in range(25)}

        with ThreadPoolExecutor(8) as pool:
            assert set().union(*pool.map(burst, range(8))) == {200}
        out = s.cli_json("audit", "verify")
        assert out["ok"], out
        # Each worker process keeps its own chain (audit.jsonl, audit-1.jsonl), no lock between them.
        assert sorted(Path(c["file"]).name for c in out["chains"]) == ["audit-1.jsonl", "audit.jsonl"]
        assert len(s.cli_json("audit", "list", "--operation", "SecretList")) == 200
    finally:
        s.stop()
