"""Every public method of the unmodified azure-keyvault-secrets SecretClient, against a real server.

The client is configured only as a user would configure it: the vault URL, the CA
bundle, a ClientSecretCredential pointed at our authority, and (for some tests) an
explicit `api_version`. `verify_challenge_resource` stays at its default (True).

The method set runs three times: with the SDK's default api-version and with 7.4 and
7.6, each against its own vault so listings are exact.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.keyvault.secrets import ApiVersion, SecretClient

API_VERSIONS = [None, "7.4", "7.6"]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _new_vault(server, prefix: str) -> str:
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    server.cli("keyvault", "create", "--name", name)
    return name


def _client(server, vault_url: str, credential, api_version: str | None = None) -> SecretClient:
    """Configured as a user would: URL, credential, CA bundle, maybe an api-version; nothing else."""
    kwargs = {"api_version": api_version} if api_version else {}
    return SecretClient(vault_url, credential, connection_verify=server.ca, **kwargs)


def _whole_seconds(dt: datetime) -> datetime:
    return dt.replace(microsecond=0)


@pytest.fixture(scope="module", params=API_VERSIONS, ids=lambda v: f"api-{v or 'default'}")
def client(request, server, admin_credential) -> SecretClient:
    """A SecretClient on a fresh vault of its own, speaking one api-version."""
    vault = _new_vault(server, "kvsc")
    c = _client(server, server.vault_url(vault), admin_credential, request.param)
    yield c
    c.close()


# -- the method set, once per api-version ---------------------------------------


def test_client_speaks_the_requested_api_version(client: SecretClient, request):
    expected = request.node.callspec.params["client"] or ApiVersion.V2026_04_01.value
    assert client.api_version == expected
    name = _unique("apiver")
    client.set_secret(name, "v")
    # send_request is public: the SDK adds the client's api-version to a relative URL.
    response = client.send_request(HttpRequest("GET", f"/secrets/{name}"))
    response.raise_for_status()
    assert f"api-version={expected}" in response.request.url
    assert response.json()["value"] == "v"


def test_set_secret_with_every_attribute(client: SecretClient):
    name = _unique("set")
    nbf = _whole_seconds(datetime.now(UTC) - timedelta(hours=1))
    exp = _whole_seconds(datetime.now(UTC) + timedelta(days=30))
    secret = client.set_secret(
        name, "p@ss", content_type="text/plain", tags={"env": "dev", "team": "a"}, enabled=True,
        not_before=nbf, expires_on=exp,
    )
    assert secret.name == name
    assert secret.value == "p@ss"
    props = secret.properties
    assert props.vault_url == client.vault_url
    assert len(props.version) == 32 and int(props.version, 16) >= 0
    assert secret.id == f"{client.vault_url}/secrets/{name}/{props.version}"
    assert props.content_type == "text/plain"
    assert props.tags == {"env": "dev", "team": "a"}
    assert props.enabled is True
    assert props.not_before == nbf
    assert props.expires_on == exp
    assert abs(props.created_on - datetime.now(UTC)) < timedelta(minutes=1)
    assert props.updated_on == props.created_on
    assert props.recoverable_days == 90
    assert props.recovery_level == "Recoverable+Purgeable"

    got = client.get_secret(name)
    assert (got.value, got.id, got.properties.not_before, got.properties.expires_on) == ("p@ss", secret.id, nbf, exp)
    assert got.properties.tags == {"env": "dev", "team": "a"}


def test_set_secret_disabled_then_get_is_forbidden(client: SecretClient):
    name = _unique("disabled")
    created = client.set_secret(name, "hidden", enabled=False)
    assert created.properties.enabled is False
    with pytest.raises(HttpResponseError) as info:
        client.get_secret(name)
    assert info.value.status_code == 403
    assert info.value.error.code == "Forbidden"
    assert info.value.error.message == "Operation get is not allowed on a disabled secret."
    # The value never leaks through the error.
    assert "hidden" not in str(info.value)


def test_get_secret_latest_and_by_version(client: SecretClient):
    name = _unique("versions")
    v1 = client.set_secret(name, "one")
    v2 = client.set_secret(name, "two")
    assert v1.properties.version != v2.properties.version
    assert client.get_secret(name).value == "two"
    assert client.get_secret(name, v1.properties.version).value == "one"
    assert client.get_secret(name, v2.properties.version).value == "two"
    assert client.get_secret(name, v1.properties.version).id == v1.id
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_secret(name, "0" * 32)
    assert info.value.error.code == "SecretNotFound"
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(_unique("never-set"))


def test_update_secret_properties(client: SecretClient):
    name = _unique("update")
    v1 = client.set_secret(name, "one", content_type="text/plain", tags={"a": "1"})
    v2 = client.set_secret(name, "two")
    exp = _whole_seconds(datetime.now(UTC) + timedelta(days=7))
    nbf = _whole_seconds(datetime.now(UTC) - timedelta(days=1))

    # Latest version (no version argument).
    updated = client.update_secret_properties(
        name, content_type="application/json", tags={"b": "2"}, expires_on=exp, not_before=nbf
    )
    assert updated.version == v2.properties.version
    assert updated.content_type == "application/json"
    assert updated.tags == {"b": "2"}
    assert updated.expires_on == exp
    assert updated.not_before == nbf
    assert updated.updated_on >= updated.created_on
    got = client.get_secret(name)
    assert got.value == "two" and got.properties.expires_on == exp and got.properties.content_type == "application/json"

    # An older version, by version; fields not sent stay as they were.
    older = client.update_secret_properties(name, v1.properties.version, tags={"old": "yes"})
    assert older.version == v1.properties.version
    assert older.tags == {"old": "yes"}
    assert older.content_type == "text/plain"
    assert client.get_secret(name, v1.properties.version).value == "one"

    # Disable, then enable again: get follows.
    assert client.update_secret_properties(name, enabled=False).enabled is False
    with pytest.raises(HttpResponseError) as info:
        client.get_secret(name)
    assert info.value.status_code == 403
    assert client.update_secret_properties(name, enabled=True).enabled is True
    assert client.get_secret(name).value == "two"

    with pytest.raises(ResourceNotFoundError):
        client.update_secret_properties(_unique("missing"), enabled=False)


def test_list_properties_of_secrets(client: SecretClient):
    names = {_unique("list") for _ in range(3)}
    for n in names:
        client.set_secret(n, "v", content_type="text/plain", tags={"k": n})
    listed = {p.name: p for p in client.list_properties_of_secrets()}
    assert names <= set(listed)
    for n in names:
        p = listed[n]
        assert p.id == f"{client.vault_url}/secrets/{n}"  # list ids carry no version
        assert p.version is None
        assert p.content_type == "text/plain"
        assert p.tags == {"k": n}
        assert p.enabled is True
        assert p.created_on is not None
    # List items never carry values on the wire.
    raw = client.send_request(HttpRequest("GET", "/secrets", params={"maxresults": 25})).json()
    assert raw["value"] and all("value" not in item for item in raw["value"])


def test_list_properties_of_secret_versions(client: SecretClient):
    name = _unique("listver")
    versions = [client.set_secret(name, f"v{i}", tags={"i": str(i)}).properties.version for i in range(4)]
    listed = list(client.list_properties_of_secret_versions(name))
    assert sorted(p.version for p in listed) == sorted(versions)
    for p in listed:
        assert p.name == name
        assert p.id == f"{client.vault_url}/secrets/{name}/{p.version}"
        assert p.tags == {"i": str(versions.index(p.version))}
    # Small pages: all versions, each once.
    paged = list(client.list_properties_of_secret_versions(name, max_page_size=3))
    assert sorted(p.version for p in paged) == sorted(versions)
    assert list(client.list_properties_of_secret_versions(_unique("missing"))) == []


def test_delete_get_deleted_list_deleted_recover(client: SecretClient):
    name = _unique("lifecycle")
    v1 = client.set_secret(name, "one")
    client.set_secret(name, "two", content_type="text/plain")

    started = time.monotonic()
    poller = client.begin_delete_secret(name)
    deleted = poller.result()  # available before waiting
    assert deleted.name == name
    assert deleted.recovery_id == f"{client.vault_url}/deletedsecrets/{name}"
    assert deleted.deleted_date is not None
    assert deleted.scheduled_purge_date - deleted.deleted_date == timedelta(days=90)
    assert deleted.properties.content_type == "text/plain"
    poller.wait()
    assert poller.done()
    # The server deletes synchronously, so the first poll finds it: no 2 s polling sleep.
    assert time.monotonic() - started < 1.5

    with pytest.raises(ResourceNotFoundError):
        client.get_secret(name)
    assert name not in {p.name for p in client.list_properties_of_secrets()}

    got = client.get_deleted_secret(name)
    assert got.recovery_id == deleted.recovery_id
    assert got.id == deleted.id
    assert got.deleted_date == deleted.deleted_date
    assert got.scheduled_purge_date == deleted.scheduled_purge_date

    listed = {d.name: d for d in client.list_deleted_secrets()}
    assert name in listed
    assert listed[name].recovery_id == deleted.recovery_id
    assert listed[name].deleted_date == deleted.deleted_date

    # A deleted-but-recoverable name cannot be set again.
    with pytest.raises(ResourceExistsError) as info:
        client.set_secret(name, "three")
    assert info.value.status_code == 409
    assert info.value.error.code == "Conflict"
    assert info.value.error.innererror["code"] == "ObjectIsDeletedButRecoverable"

    recover = client.begin_recover_deleted_secret(name)
    recovered = recover.result()
    assert recovered.name == name
    recover.wait()
    assert recover.done()
    assert client.get_secret(name).value == "two"
    assert client.get_secret(name, v1.properties.version).value == "one"
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret(name)
    with pytest.raises(ResourceNotFoundError):
        client.begin_recover_deleted_secret(name)  # not deleted any more


def test_deleted_disabled_secret(client: SecretClient):
    """Azure answers GetDeletedSecret of a disabled secret with 403; the delete poller takes that as done."""
    name = _unique("deldisabled")
    client.set_secret(name, "hidden", enabled=False)
    started = time.monotonic()
    poller = client.begin_delete_secret(name)
    poller.wait()
    assert poller.done() and time.monotonic() - started < 1.5
    assert poller.result().properties.enabled is False
    with pytest.raises(HttpResponseError) as info:
        client.get_deleted_secret(name)
    assert info.value.status_code == 403
    assert info.value.error.code == "Forbidden"
    assert info.value.error.message == "Operation get is not permitted on this object."
    listed = [d for d in client.list_deleted_secrets() if d.name == name]
    assert len(listed) == 1 and listed[0].properties.enabled is False
    client.begin_recover_deleted_secret(name).wait()  # its poller's get answers 403 too: done
    assert client.update_secret_properties(name, enabled=True).enabled is True
    assert client.get_secret(name).value == "hidden"


def test_get_works_outside_the_nbf_exp_window(client: SecretClient):
    """exp and nbf are informational for secrets: Azure still returns the value."""
    now = _whole_seconds(datetime.now(UTC))
    expired = _unique("expired")
    client.set_secret(expired, "old", expires_on=now - timedelta(days=1))
    got = client.get_secret(expired)
    assert got.value == "old" and got.properties.expires_on == now - timedelta(days=1)
    future = _unique("notyet")
    client.set_secret(future, "soon", not_before=now + timedelta(days=1))
    assert client.get_secret(future).value == "soon"


def test_delete_then_purge(client: SecretClient):
    name = _unique("purge")
    client.set_secret(name, "gone")
    client.begin_delete_secret(name).wait()
    client.purge_deleted_secret(name)
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret(name)
    assert name not in {d.name for d in client.list_deleted_secrets()}
    # The name is free again, with no trace of the old versions.
    fresh = client.set_secret(name, "new")
    assert [p.version for p in client.list_properties_of_secret_versions(name)] == [fresh.properties.version]
    with pytest.raises(ResourceNotFoundError):
        client.purge_deleted_secret(_unique("never-deleted"))
    with pytest.raises(ResourceNotFoundError):
        client.begin_delete_secret(_unique("never-set"))


def test_backup_and_restore(client: SecretClient):
    name = _unique("backup")
    first, second = f"first-{uuid.uuid4().hex}", f"second-{uuid.uuid4().hex}"
    v1 = client.set_secret(name, first, tags={"t": "1"})
    v2 = client.set_secret(name, second, content_type="text/plain")
    blob = client.backup_secret(name)
    assert isinstance(blob, bytes) and len(blob) > 32
    # Opaque, not a plaintext dump (values long enough that random bytes cannot match by chance).
    assert first.encode() not in blob and second.encode() not in blob

    # Restoring over a live name conflicts.
    with pytest.raises(ResourceExistsError) as info:
        client.restore_secret_backup(blob)
    assert info.value.status_code == 409
    assert info.value.error.code == "Conflict"

    client.begin_delete_secret(name).wait()
    # ... and so does restoring over a deleted-but-recoverable name.
    with pytest.raises(ResourceExistsError):
        client.restore_secret_backup(blob)
    client.purge_deleted_secret(name)

    restored = client.restore_secret_backup(blob)
    assert restored.name == name
    assert restored.version == v2.properties.version
    assert restored.id == v2.id
    assert restored.content_type == "text/plain"
    assert client.get_secret(name).value == second
    assert client.get_secret(name, v1.properties.version).value == first
    assert client.get_secret(name, v1.properties.version).properties.tags == {"t": "1"}

    with pytest.raises(ResourceNotFoundError):
        client.backup_secret(_unique("missing"))


def test_tampered_backup_is_rejected(client: SecretClient):
    name = _unique("tamper")
    client.set_secret(name, "v")
    blob = bytearray(client.backup_secret(name))
    client.begin_delete_secret(name).wait()
    client.purge_deleted_secret(name)
    blob[len(blob) // 2] ^= 0x01
    with pytest.raises(HttpResponseError) as info:
        client.restore_secret_backup(bytes(blob))
    assert info.value.status_code == 400
    assert info.value.error.code == "Malformed backup blob"
    with pytest.raises(HttpResponseError) as info:
        client.restore_secret_backup(b"not a backup at all")
    assert info.value.status_code == 400
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(name)  # nothing was restored


def test_context_manager_and_close(server, client: SecretClient, admin_credential):
    name = _unique("ctx")
    client.set_secret(name, "v")
    with _client(server, client.vault_url, admin_credential, client.api_version) as c:
        assert isinstance(c, SecretClient)
        assert c.get_secret(name).value == "v"
    other = _client(server, client.vault_url, admin_credential, client.api_version)
    assert other.get_secret(name).value == "v"
    other.close()


# -- behaviour that needs one api-version only ------------------------------------


@pytest.fixture(scope="module")
def paging_client(server, admin_credential) -> SecretClient:
    """A vault holding exactly 60 secrets, for exact listing checks."""
    vault = _new_vault(server, "kvpage")
    c = _client(server, server.vault_url(vault), admin_credential)
    for i in range(60):
        c.set_secret(f"page-{i:02d}", f"value-{i}")
    yield c
    c.close()


def test_listing_sixty_secrets_yields_each_exactly_once(paging_client: SecretClient):
    expected = [f"page-{i:02d}" for i in range(60)]
    default_pages = [[p.name for p in page] for page in paging_client.list_properties_of_secrets().by_page()]
    assert sorted(n for page in default_pages for n in page) == expected
    assert [len(p) for p in default_pages] == [25, 25, 10]  # the service's default page is 25

    small_pages = [[p.name for p in page] for page in paging_client.list_properties_of_secrets(max_page_size=7).by_page()]
    assert sorted(n for page in small_pages for n in page) == expected
    assert [len(p) for p in small_pages] == [7] * 8 + [4]


def test_listing_deleted_secrets_pages(server, admin_credential):
    vault = _new_vault(server, "kvdel")
    with _client(server, server.vault_url(vault), admin_credential) as c:
        names = [f"gone-{i:02d}" for i in range(9)]
        for n in names:
            c.set_secret(n, "v")
        c.set_secret("stays", "v")
        for n in names:
            c.begin_delete_secret(n).wait()
        pages = [[d.name for d in page] for page in c.list_deleted_secrets(max_page_size=4).by_page()]
        assert sorted(n for page in pages for n in page) == names
        assert [len(p) for p in pages] == [4, 4, 1]
        assert [p.name for p in c.list_properties_of_secrets(max_page_size=4)] == ["stays"]


def test_max_page_size_out_of_range_is_bad_parameter(secret_client: SecretClient):
    with pytest.raises(HttpResponseError) as info:
        list(secret_client.list_properties_of_secrets(max_page_size=26))
    assert info.value.status_code == 400
    assert info.value.error.code == "BadParameter"


def test_value_size_limit_is_25600_bytes(secret_client: SecretClient):
    name = _unique("big")
    at_limit = "x" * 25_600
    assert secret_client.set_secret(name, at_limit).value == at_limit
    assert secret_client.get_secret(name).value == at_limit

    with pytest.raises(HttpResponseError) as info:
        secret_client.set_secret(name, "x" * 25_601)
    assert info.value.status_code == 400
    assert info.value.error.code == "BadParameter"
    assert info.value.error.message == "Secret is beyond the maximum permitted length of 25600 characters."
    assert info.value.error.innererror["code"] == "SecretTooLarge"
    # The rejected write left the stored secret alone.
    assert [p.version for p in secret_client.list_properties_of_secret_versions(name)] == [
        secret_client.get_secret(name).properties.version
    ]

    # The limit counts UTF-8 bytes (Azure documents 25k bytes): 12,801 two-byte characters are too many.
    with pytest.raises(HttpResponseError) as info:
        secret_client.set_secret(_unique("big-utf8"), "é" * 12_801)
    assert info.value.status_code == 400


@pytest.mark.parametrize(
    "value",
    [
        "🔑🗝️ emoji 👩🏽‍💻 zwj",
        "中文密码・日本語のパスワード・비밀번호",
        "e\u0301 a\u0308 combining n\u0303",  # decomposed forms must not be normalised
        "",
        "line1\nline2\r\n\ttab \"quotes\" \\backslash\\ \u0000nul",
    ],
    ids=["emoji", "cjk", "combining", "empty", "control"],
)
def test_unicode_values_round_trip(secret_client: SecretClient, value: str):
    name = _unique("uni")
    created = secret_client.set_secret(name, value, content_type="text/plain; charset=utf-8", tags={"ключ": "値 🔒"})
    assert created.value == value
    got = secret_client.get_secret(name)
    assert got.value == value
    assert len(got.value.encode("utf-8")) == len(value.encode("utf-8"))
    assert got.properties.tags == {"ключ": "値 🔒"}


def test_names_compare_case_insensitively(secret_client: SecretClient):
    name = _unique("Foo").replace("foo", "Foo")
    created = secret_client.set_secret(name, "bar")
    lower, upper = name.lower(), name.upper()
    assert secret_client.get_secret(lower).value == "bar"
    assert secret_client.get_secret(upper, created.properties.version.upper()).value == "bar"
    # Setting under another spelling adds a version to the same secret.
    second = secret_client.set_secret(upper, "baz")
    assert secret_client.get_secret(name).value == "baz"
    versions = {p.version for p in secret_client.list_properties_of_secret_versions(lower)}
    assert versions == {created.properties.version, second.properties.version}
    assert [p.name for p in secret_client.list_properties_of_secrets() if p.name.lower() == lower] == [name]


def test_backup_restores_into_another_vault(server, secret_client: SecretClient, admin_credential):
    name = _unique("moved")
    original = secret_client.set_secret(name, "portable", tags={"from": "shared"})
    blob = secret_client.backup_secret(name)
    target_vault = _new_vault(server, "kvmove")
    with _client(server, server.vault_url(target_vault), admin_credential) as target:
        restored = target.restore_secret_backup(blob)
        assert restored.vault_url == target.vault_url
        assert restored.id == f"{target.vault_url}/secrets/{name}/{original.properties.version}"
        got = target.get_secret(name)
        assert (got.value, got.properties.tags) == ("portable", {"from": "shared"})
    assert secret_client.get_secret(name).value == "portable"  # the source is untouched


def test_default_challenge_resource_verification_is_accepted(server, vault, admin_credential):
    # verify_challenge_resource is left at its default (True): the challenge's resource must match the vault host.
    with SecretClient(server.vault_url(vault), admin_credential, connection_verify=server.ca) as c:
        name = _unique("challenge")
        c.set_secret(name, "ok")
        assert c.get_secret(name).value == "ok"


def test_vault_that_does_not_exist_is_not_found(server, admin_credential):
    started = time.monotonic()
    with _client(server, server.vault_url("kv-no-such-vault"), admin_credential) as c:
        with pytest.raises(ResourceNotFoundError) as info:
            c.get_secret("anything")
        with pytest.raises(ResourceNotFoundError):
            c.set_secret("anything", "v")
    assert info.value.status_code == 404
    assert time.monotonic() - started < 5  # answered, not retried or hung


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_secret(""),
        lambda c: c.set_secret("", "v"),
        lambda c: c.get_deleted_secret(""),
        lambda c: c.update_secret_properties("", enabled=True),
        lambda c: c.backup_secret(""),
    ],
    ids=["get", "set", "get_deleted", "update", "backup"],
)
def test_empty_name_is_an_error_not_a_listing(secret_client: SecretClient, call):
    # GET /secrets// once answered with a redirect to the listing, which the SDK read as an empty secret.
    with pytest.raises(HttpResponseError) as info:
        call(secret_client)
    assert info.value.status_code in (404, 405)
    assert info.value.error.code in ("NotFound", "MethodNotAllowed")
