"""A change is never committed without its audit record: a broken audit sink refuses the change itself.

Attacks the real server over the wire. The sink is broken the ways it breaks in
production: the disk holding the audit file is full (a real tmpfs of a few
kilobytes, filled up; needs root to mount), and the audit file replaced by a
directory (anyone who can write the state dir). Before the fix, both committed
the secret, answered 503 and left no record, and `audit verify` said ok.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from azure.identity import ClientSecretCredential

from tests.conftest import Server, free_port, start_server

VAULT = "kv-failclosed"


def token(srv: Server, resource: str = "https://vault.azure.net/.default") -> str:
    a = srv.admin
    cred = ClientSecretCredential(
        a["tenantId"], a["clientId"], a["clientSecret"], authority=srv.url, disable_instance_discovery=True,
        connection_verify=srv.ca,
    )
    return cred.get_token(resource).token


def put_secret(srv: Server, bearer: str, name: str, value: str, cid: str) -> httpx.Response:
    return httpx.put(
        f"{srv.vault_url(VAULT)}/secrets/{name}?api-version=7.6",
        json={"value": value},
        headers={"Authorization": f"Bearer {bearer}", "x-ms-client-request-id": cid},
        verify=srv.ssl_context,
    )


def get_secret(srv: Server, bearer: str, name: str) -> httpx.Response:
    return httpx.get(
        f"{srv.vault_url(VAULT)}/secrets/{name}?api-version=7.6",
        headers={"Authorization": f"Bearer {bearer}"}, verify=srv.ssl_context,
    )


def records(srv: Server) -> list[dict]:
    return srv.cli_json("audit", "list")


def assert_refused(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "ServiceUnavailable"
    assert "audit" in r.json()["error"]["message"]


def test_a_directory_in_place_of_the_audit_file_refuses_the_change(tmp_path: Path):
    srv = start_server(tmp_path)
    try:
        srv.cli("keyvault", "create", "--name", VAULT)
        bearer = token(srv)
        assert put_secret(srv, bearer, "before", "v", str(uuid.uuid4())).status_code == 200

        log = srv.state_dir / "audit.jsonl"
        aside = tmp_path / "audit.jsonl.aside"
        os.rename(log, aside)
        log.mkdir()
        cid = str(uuid.uuid4())
        assert_refused(put_secret(srv, bearer, "during", "MARKER-" + cid, cid))
        log.rmdir()
        os.rename(aside, log)

        # The change is not there, and the log is honest about it.
        assert get_secret(srv, bearer, "during").status_code == 404
        assert not [r for r in records(srv) if r["correlationId"] == cid]
        assert srv.cli("audit", "verify").returncode == 0
        # The server recovered without a restart.
        assert put_secret(srv, bearer, "after", "v", str(uuid.uuid4())).status_code == 200
    finally:
        srv.stop()


@pytest.fixture
def full_disk(tmp_path: Path):
    """A 256 KiB tmpfs for the audit file alone (the database stays on the normal disk)."""
    mnt = tmp_path / "auditfs"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(mnt: Path) -> Path:
    filler = mnt / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError:
        pass  # ENOSPC: the disk is full
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_refuses_the_change_and_verify_stays_honest(tmp_path: Path, full_disk: Path):
    state = tmp_path / "state"
    state.mkdir()
    (full_disk / "audit.jsonl").touch(mode=0o600)
    (state / "audit.jsonl").symlink_to(full_disk / "audit.jsonl")
    srv = Server(state, free_port()).start()
    try:
        srv.cli("keyvault", "create", "--name", VAULT)
        bearer = token(srv)
        assert put_secret(srv, bearer, "before", "v", str(uuid.uuid4())).status_code == 200

        filler = fill(full_disk)
        # The audit file's last page may still have room for a record or two (tmpfs allocates whole
        # pages): a change whose record fits is committed and answered; the first that does not fit
        # is refused. Every answer must match what is stored afterwards.
        answered, refused = [], []
        for _ in range(40):
            cid = str(uuid.uuid4())
            r = put_secret(srv, bearer, f"during-{len(answered) + len(refused)}", "MARKER-" + cid, cid)
            (answered if r.status_code == 200 else refused).append((r, cid))
            if refused:
                break
        assert refused, "no change was refused although the audit disk is full"
        r, cid = refused[0]
        assert_refused(r)
        during = f"during-{len(answered)}"
        # An update of an existing secret is refused too and leaves the old value.
        assert_refused(put_secret(srv, bearer, "before", "changed", str(uuid.uuid4())))
        filler.unlink()

        assert get_secret(srv, bearer, during).status_code == 404
        assert get_secret(srv, bearer, "before").json()["value"] == "v"
        assert not [r for r in records(srv) if r["correlationId"] == cid]
        for i, (_, ok_cid) in enumerate(answered):  # what was answered is stored, and recorded
            assert get_secret(srv, bearer, f"during-{i}").json()["value"] == "MARKER-" + ok_cid
            assert [r for r in records(srv) if r["correlationId"] == ok_cid]
        verify = srv.cli("audit", "verify", check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        text = (full_disk / "audit.jsonl").read_text()
        assert "MARKER-" not in text and cid not in text  # values never; the refused request not at all
        assert put_secret(srv, bearer, "after", "v", str(uuid.uuid4())).status_code == 200
    finally:
        srv.stop()
