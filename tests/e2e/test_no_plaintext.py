"""No secret value, tag, or client secret lies in plaintext anywhere on disk or in the log.

A recognisable random canary goes through the whole secret life cycle with the
official SDK; then every file in the state dir (the SQLite database, its -wal
and -shm files included) and the server log are searched for it in every
encoding a careless implementation might use.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
from azure.keyvault.secrets import SecretClient

from tests.conftest import Server


def _b64_needles(data: bytes) -> list[bytes]:
    """base64 forms of `data` wherever it sits in a larger buffer (three alignments, both alphabets)."""
    out = []
    for shift in range(3):
        enc = base64.b64encode(b"\0" * shift + data)
        fixed = enc[(shift * 8 + 5) // 6 : (shift + len(data)) * 8 // 6]  # chars that depend on `data` only
        out += [fixed, fixed.replace(b"+", b"-").replace(b"/", b"_")]
    return out


def needles(text: str) -> dict[str, bytes | list[bytes]]:
    raw = text.encode()
    return {
        "utf-8": raw,
        "utf-16-le": text.encode("utf-16-le"),
        "utf-16-be": text.encode("utf-16-be"),
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
        "base64": _b64_needles(raw),
    }


def find_leaks(text: str, files: list[Path]) -> list[str]:
    leaks = []
    for path in files:
        data = path.read_bytes()
        for form, needle in needles(text).items():
            for n in needle if isinstance(needle, list) else [needle]:
                if n in data:
                    leaks.append(f"{path.name}: {form}")
    return leaks


def state_files(server: Server) -> list[Path]:
    return [p for p in server.state_dir.rglob("*") if p.is_file()]


@pytest.fixture(scope="module")
def canaries(server: Server, secret_client: SecretClient) -> dict[str, str]:
    value = f"PLAINTEXT-CANARY-{uuid.uuid4()}"
    second = f"PLAINTEXT-CANARY-{uuid.uuid4()}"
    tag = f"TAG-CANARY-{uuid.uuid4()}"
    name = f"canary-{uuid.uuid4().hex[:8]}"

    secret_client.set_secret(name, value, content_type="text/plain", tags={"owner": tag})
    secret_client.set_secret(name, second, tags={"owner": tag})
    secret_client.update_secret_properties(name, tags={"owner": tag, "rotated": "yes"})
    blob = secret_client.backup_secret(name)
    assert value.encode() not in blob and second.encode() not in blob
    secret_client.begin_delete_secret(name).wait()
    secret_client.purge_deleted_secret(name)
    secret_client.restore_secret_backup(blob)
    secret_client.begin_delete_secret(name).wait()
    secret_client.begin_recover_deleted_secret(name).wait()
    got = secret_client.get_secret(name)
    assert got.value == second and got.properties.tags["owner"] == tag
    # The files exist and hold the records, so a clean search means sealed, not missing.
    db = server.state_dir / "strongroom.db"
    assert db.exists() and db.stat().st_size > 0
    return {"value": value, "older version": second, "tag": tag}


def test_search_helper_finds_what_it_looks_for(tmp_path: Path):
    """The searches below would notice a leak in any of the encodings they claim to cover."""
    text = f"PLAINTEXT-CANARY-{uuid.uuid4()}"
    for i, form in enumerate(
        [
            text.encode(),
            text.encode("utf-16-le"),
            text.encode("utf-16-be"),
            text.encode().hex().encode(),
            base64.b64encode(b'{"value":"' + text.encode() + b'"}'),
            base64.urlsafe_b64encode(b'xx"' + text.encode() + b'"'),
            base64.b64encode(b'y' + text.encode()),
        ]
    ):
        f = tmp_path / f"f{i}"
        f.write_bytes(b"junk" + form + b"junk")
        assert find_leaks(text, [f]), form


@pytest.mark.parametrize("which", ["value", "older version", "tag"])
def test_canary_not_in_state_dir(server: Server, canaries: dict[str, str], which: str):
    files = state_files(server)
    names = {p.name for p in files}
    assert {"strongroom.db", "strongroom.db-wal", "strongroom.db-shm", "master.key", "admin.json"} <= names
    assert find_leaks(canaries[which], files) == []


@pytest.mark.parametrize("which", ["value", "older version", "tag"])
def test_canary_not_in_server_log(server: Server, canaries: dict[str, str], which: str):
    assert server.log_path is not None and server.log_path.exists()
    assert find_leaks(canaries[which], [server.log_path]) == []


def test_admin_client_secret_not_in_database(server: Server, canaries):
    secret = server.admin["clientSecret"]
    db_files = [p for p in state_files(server) if p.name.startswith("strongroom.db")]
    assert any(p.name == "strongroom.db" for p in db_files)
    assert find_leaks(secret, db_files) == []
    assert find_leaks(secret, [server.log_path]) == []
