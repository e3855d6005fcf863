"""The server-backed rules against a real `strongroom up`: least privilege (SR201-SR203) and live values (SR403).

The fixture's SPCs name placeholder client ids; each test copies the fixture and puts in the client ids
of service principals made with `strongroom ad sp create-for-rbac`, as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from strongroom.keyvault import value_match
from tests.conftest import Server, start_server

FIXTURES = Path(__file__).parent / "fixtures"
STRONGROOM = [sys.executable, "-m", "strongroom.cli.main"]
VAULT = "kv-lint"
LIVE_VALUE = "orchard tiger 1987 lamp"  # fixtures/violations/apps/config.yaml, LIVE_PASSWORD
WEB_PLACEHOLDER = "11111111-1111-1111-1111-111111111111"
WORKER_PLACEHOLDER = "22222222-2222-2222-2222-222222222222"


@pytest.fixture(scope="module")
def srv(tmp_path_factory) -> Server:
    s = start_server(tmp_path_factory.mktemp("lint-server"))
    cli(s, "keyvault", "create", "--name", VAULT)
    for name, value in (("db-password", LIVE_VALUE), ("queue-key", "q-" + uuid.uuid4().hex), ("other", "x-1")):
        cli(s, "keyvault", "secret", "set", "--vault-name", VAULT, "--name", name, "--value", value)
    yield s
    s.stop()


def cli(srv: Server, *args: str) -> str:
    """The CLI's own commands run in this process (set-up only: saves an interpreter start per call under load)."""
    from typer.testing import CliRunner

    from strongroom.cli.main import app, expand_multi_value_flags

    result = CliRunner().invoke(app, expand_multi_value_flags(list(args)), env={"STRONGROOM_STATE_DIR": str(srv.state_dir)})
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.stdout


def vault_id(srv: Server) -> str:
    return json.loads(cli(srv, "keyvault", "show", "--name", VAULT))["id"]


def make_sp(srv: Server, role: str | None = None, scope: str | None = None) -> dict:
    sp = json.loads(cli(srv, "ad", "sp", "create-for-rbac", "--name", f"lint-{uuid.uuid4().hex[:8]}"))
    if role:
        cli(srv, "role", "assignment", "create", "--role", role, "--assignee", sp["appId"], "--scope", scope)
    return sp


def repo_with(tmp: Path, fixture: str, web: str, worker: str) -> Path:
    repo = tmp / fixture
    shutil.copytree(FIXTURES / fixture, repo)
    for f in repo.rglob("*.yaml"):
        f.write_text(f.read_text().replace(WEB_PLACEHOLDER, web).replace(WORKER_PLACEHOLDER, worker))
    return repo


def lint(srv: Server, repo: Path, *args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    env = {**os.environ, "STRONGROOM_STATE_DIR": str(srv.state_dir), "COLUMNS": "250", **(env or {})}
    proc = subprocess.run([*STRONGROOM, "lint", ".", "--server", "--format", "json", *args], capture_output=True,
                          text=True, cwd=repo, env=env, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return proc, json.loads(proc.stdout)


def by_rule(report: dict, rule: str) -> list[dict]:
    return [f for f in report["findings"] if f["ruleId"] == rule]


def test_sr201_positive_and_its_fix_command_works(srv, tmp_path):
    vid = vault_id(srv)
    web = make_sp(srv, "Key Vault Secrets Officer", vid)
    worker = make_sp(srv)
    repo = repo_with(tmp_path, "violations", web["appId"], worker["appId"])
    _, report = lint(srv, repo)
    [f] = by_rule(report, "SR201")
    assert (f["file"], f["line"], f["practice"]) == ("apps/web.yaml", 18, 2)
    assert "Key Vault Secrets Officer" in f["message"]
    create = (f'strongroom role assignment create --role "Key Vault Secrets User" --assignee {web["appId"]} '
              f"--scope {vid}/secrets/db-password")
    assert create in f["fix"] and "strongroom role assignment delete --ids " in f["fix"]
    for command in f["fix"].split(" ; "):  # run the fix exactly as printed
        argv = command.split()
        if "--role" in argv:  # the role name is quoted for a shell
            i = argv.index("--role")
            argv[i + 1:i + 5] = [" ".join(argv[i + 1:i + 5]).strip('"')]
        cli(srv, *argv[1:])
    _, after = lint(srv, repo)
    assert by_rule(after, "SR201") == [] and by_rule(after, "SR202") == []


def test_sr202_positive(srv, tmp_path):
    web = make_sp(srv)
    worker = make_sp(srv, "Key Vault Secrets User", vault_id(srv))
    repo = repo_with(tmp_path, "violations", web["appId"], worker["appId"])
    _, report = lint(srv, repo)
    [f] = by_rule(report, "SR202")
    assert (f["file"], f["line"]) == ("apps/worker.yaml", 18)
    assert "1 of 3 secrets" in f["message"] and f"--scope {vault_id(srv)}/secrets/queue-key" in f["fix"]


def test_sr201_sr202_negative(srv, tmp_path):
    vid = vault_id(srv)
    web = make_sp(srv, "Key Vault Secrets User", f"{vid}/secrets/db-password")
    worker = make_sp(srv, "Key Vault Secrets User", f"{vid}/secrets/queue-key")
    repo = repo_with(tmp_path, "clean", web["appId"], worker["appId"])
    proc, report = lint(srv, repo)
    assert report["findings"] == [] and proc.returncode == 0


def test_sr203_unused_assignment_from_the_audit_log(srv, tmp_path):
    """The audit log decides: a used assignment reports its last use, an unused one 'never used'.

    Assignments are made now, so the check runs with its clock 100 days ahead (the server has no
    way to back-date an assignment); with the real clock nothing is old enough to report.
    """
    from strongroom.cli.client import Client
    from strongroom.cli.lint import _last_used
    from strongroom.lint import graph, manifests, server_checks
    from strongroom.lint.rules import Options

    vid = vault_id(srv)
    used = make_sp(srv, "Key Vault Secrets User", f"{vid}/secrets/db-password")
    unused = make_sp(srv, "Key Vault Secrets User", f"{vid}/secrets/queue-key")
    from azure.identity import ClientSecretCredential
    from azure.keyvault.secrets import SecretClient

    cred = ClientSecretCredential(srv.admin["tenantId"], used["appId"], used["password"], authority=srv.url,
                                  disable_instance_discovery=True, connection_verify=srv.ca)
    SecretClient(srv.vault_url(VAULT), cred, connection_verify=srv.ca).get_secret("db-password")
    repo = repo_with(tmp_path, "clean", used["appId"], unused["appId"])
    g = graph.build(manifests.load([repo], repo).docs)
    client = Client(srv.state_dir)
    last_used = _last_used(srv.state_dir, 200)
    assert last_used is not None
    later = datetime.now(UTC) + timedelta(days=100)
    found = {f.file: f for f in server_checks.least_privilege(g, client, Options(unused_days=90), last_used, now=later)
             if f.rule_id == "SR203"}
    assert "never used" in found["apps/worker.yaml"].message
    assert found["apps/worker.yaml"].fix.startswith("strongroom role assignment delete --ids ")
    assert f"last used {datetime.now(UTC):%Y-%m-%d}" in found["apps/web.yaml"].message
    assert [f for f in server_checks.least_privilege(g, client, Options(unused_days=90), last_used)
            if f.rule_id == "SR203"] == []


def test_sr403_names_vault_and_secret_and_the_value_appears_nowhere(srv, tmp_path):
    web, worker = make_sp(srv), make_sp(srv)
    repo = repo_with(tmp_path, "violations", web["appId"], worker["appId"])
    proc, report = lint(srv, repo)
    [f] = by_rule(report, "SR403")
    assert (f["file"], f["line"], f["severity"]) == ("apps/config.yaml", 10, "error")
    assert "secret db-password in vault kv-lint" in f["message"]
    outputs = [proc.stdout, proc.stderr]
    for fmt in ("sarif", "table"):
        p = subprocess.run([*STRONGROOM, "lint", ".", "--server", "--format", fmt], capture_output=True, text=True,
                           cwd=repo, env={**os.environ, "STRONGROOM_STATE_DIR": str(srv.state_dir)}, timeout=120)
        assert "SR403" in p.stdout
        outputs += [p.stdout, p.stderr]
    outputs.append(srv.log_path.read_text(errors="replace"))
    outputs += [p.read_text(errors="replace") for p in srv.state_dir.glob("audit*.jsonl")]
    assert any("SecretValueMatch" in o for o in outputs[-2:]), "the exchange is audited"
    for o in outputs:
        assert LIVE_VALUE not in o


def test_sr403_negative(srv, tmp_path):
    repo = repo_with(tmp_path, "clean", WEB_PLACEHOLDER, WORKER_PLACEHOLDER)
    _, report = lint(srv, repo)
    assert by_rule(report, "SR403") == []


# -- the value-match route itself -------------------------------------------------------------


def _token(srv: Server, app_id: str, secret: str) -> str:
    r = httpx.post(f"{srv.url}/{srv.admin['tenantId']}/oauth2/v2.0/token", verify=srv.ssl_context, data={
        "grant_type": "client_credentials", "client_id": app_id, "client_secret": secret,
        "scope": "https://vault.azure.net/.default"})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def _ask(srv: Server, token: str | None, body) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{srv.vault_url(VAULT)}/strongroom/lint/value-matches", params={"api-version": "2026-04-01"},
                      headers={**headers, "Content-Type": "application/json"}, content=content, verify=srv.ssl_context,
                      timeout=30)


def _body(*candidates: str) -> dict:
    salt = os.urandom(32)
    return {"salt": value_match.b64(salt), "digests": [value_match.b64(value_match.digest(salt, c)) for c in candidates]}


def test_a_caller_without_read_rights_learns_nothing(srv):
    """Same answer for the live value and for a random string: for no rights, list-only rights, another secret's rights."""
    vid = vault_id(srv)
    callers = [
        make_sp(srv),  # no role at all
        make_sp(srv, "Key Vault Reader", vid),  # metadata (names) but not values
        make_sp(srv, "Key Vault Secrets User", f"{vid}/secrets/queue-key"),  # reads another secret
    ]
    for sp in callers:
        token = _token(srv, sp["appId"], sp["password"])
        live, random_ = _ask(srv, token, _body(LIVE_VALUE)), _ask(srv, token, _body(uuid.uuid4().hex))
        assert (live.status_code, live.json()) == (random_.status_code, random_.json()) == (200, {"value": []})
    reader = make_sp(srv, "Key Vault Secrets User", f"{vid}/secrets/db-password")
    answer = _ask(srv, _token(srv, reader["appId"], reader["password"]), _body("nope", LIVE_VALUE)).json()["value"]
    assert [m["name"] for m in answer] == ["db-password"]
    assert LIVE_VALUE not in json.dumps(answer)


def test_value_match_route_abuse(srv):
    admin_token = _token(srv, srv.admin["clientId"], srv.admin["clientSecret"])
    assert _ask(srv, None, _body("x")).status_code == 401
    assert _ask(srv, "not-a-token", _body("x")).status_code == 401
    for bad in ({}, {"salt": "AAAA", "digests": []}, {"salt": value_match.b64(os.urandom(32)), "digests": ["AAAA"]},
                {"salt": value_match.b64(os.urandom(32)), "digests": "x"}, [1, 2]):
        r = _ask(srv, admin_token, bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "BadParameter", r.text
    assert _ask(srv, admin_token, b"{not json").status_code == 400
    too_many = _body(*[str(i) for i in range(value_match.MAX_DIGESTS + 1)])
    assert _ask(srv, admin_token, too_many).status_code in (400, 413)
    huge = b'{"salt": "' + b"A" * (value_match.MAX_BODY_BYTES + 10) + b'"}'
    r = _ask(srv, admin_token, huge)
    assert r.status_code == 413 and r.json()["error"]["code"] == "RequestEntityTooLarge"  # the code of every 413
    assert _ask(srv, admin_token, _body(LIVE_VALUE)).json()["value"][0]["name"] == "db-password"


def test_the_linter_run_by_a_non_admin_sees_only_what_it_may_read(srv, tmp_path):
    """CI runs the linter with its own identity: no read right on db-password, no SR403; with it, SR403."""
    vid = vault_id(srv)
    repo = repo_with(tmp_path, "violations", WEB_PLACEHOLDER, WORKER_PLACEHOLDER)
    empty_state = tmp_path / "no-state"
    empty_state.mkdir()

    def as_(sp: dict) -> dict:
        proc = subprocess.run([*STRONGROOM, "lint", ".", "--server", "--format", "json"], capture_output=True, text=True,
                              cwd=repo, timeout=120, env={
                                  **os.environ, "STRONGROOM_STATE_DIR": str(empty_state), "STRONGROOM_SERVER": srv.url,
                                  "STRONGROOM_CA_FILE": srv.ca, "AZURE_TENANT_ID": srv.admin["tenantId"],
                                  "AZURE_CLIENT_ID": sp["appId"], "AZURE_CLIENT_SECRET": sp["password"]})
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert LIVE_VALUE not in proc.stdout + proc.stderr
        return json.loads(proc.stdout)

    outsider = make_sp(srv, "Key Vault Reader", vid)  # sees names, not values
    assert by_rule(as_(outsider), "SR403") == []
    reader = make_sp(srv, "Key Vault Secrets User", f"{vid}/secrets/db-password")
    [f] = by_rule(as_(reader), "SR403")
    assert f["file"] == "apps/config.yaml" and "db-password" in f["message"]


def test_value_match_costs_quota_by_the_work_it_does(srv):
    """One request over a vault of 26 secrets takes two reads of its quota: with a quota of 2 per
    window, the second request is throttled (429 with Retry-After) before any secret is opened."""
    name = f"kvq{uuid.uuid4().hex[:8]}"
    cli(srv, "keyvault", "create", "--name", name, "--tags", "strongroom-reads-per-10s=2")
    admin_token = _token(srv, srv.admin["clientId"], srv.admin["clientSecret"])
    with httpx.Client(verify=srv.ssl_context, timeout=30, headers={"Authorization": f"Bearer {admin_token}"}) as h:
        for i in range(26):
            r = h.put(f"{srv.vault_url(name)}/secrets/s{i}", params={"api-version": "2026-04-01"}, json={"value": f"v{i}"})
            assert r.status_code == 200, r.text
        url = f"{srv.vault_url(name)}/strongroom/lint/value-matches"
        first = h.post(url, params={"api-version": "2026-04-01"}, json=_body("v3"))
        second = h.post(url, params={"api-version": "2026-04-01"}, json=_body("v3"))
    assert first.status_code == 200 and [m["name"] for m in first.json()["value"]] == ["s3"]
    assert second.status_code == 429 and second.headers.get("Retry-After")
