"""The change feed over SSE against the real server: Event Grid shape, resume, per-event authorization, push latency."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.authz.conftest import admin_token, http, make_sp, sp_token, vault_scope
from tests.conftest import start_server
from tests.events.sse import Subscription

ADMIN_SECRET_VALUE = "sse-canary-value-5d1e"


def events_url(server, vault: str) -> str:
    return f"{server.vault_url(vault)}/strongroom/events"


def put_secret(server, vault: str, name: str, value: str, token: str, **body) -> dict:
    with http(server) as h:
        r = h.put(f"{server.vault_url(vault)}/secrets/{name}", params={"api-version": "7.4"},
                  json={"value": value, **body}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def feed_vault(server) -> str:
    name = f"ev{uuid.uuid4().hex[:10]}"
    server.cli("keyvault", "create", "--name", name)
    return name


@pytest.fixture(scope="module")
def vault_token(server) -> str:
    return admin_token(server, vault_scope(server))


def test_new_versions_arrive_as_event_grid_events(server, feed_vault, vault_token):
    sub = Subscription(events_url(server, feed_vault), vault_token, server.ca).start()
    assert sub.status == 200 and sub.headers["content-type"].startswith("text/event-stream")
    start = int(sub.headers["strongroom-event-sequence"])
    name = f"s-{uuid.uuid4().hex[:6]}"
    bundle = put_secret(server, feed_vault, name, ADMIN_SECRET_VALUE, vault_token, attributes={"exp": 1900000000})
    written = time.monotonic()
    [msg] = sub.wait_for(1)
    sub.close()
    print(f"\nSecretNewVersionCreated delivered {1000 * (msg.received - written):.0f} ms after the PUT answered")
    vault_id = server.cli_json("keyvault", "show", "--name", feed_vault)["id"]
    version = bundle["id"].rsplit("/", 1)[1]
    assert msg.id == start + 1
    ev = msg.event
    assert set(ev) == {"id", "topic", "subject", "eventType", "eventTime", "data", "dataVersion", "metadataVersion"}
    assert ev["topic"] == vault_id and ev["subject"] == name
    assert ev["eventType"] == "Microsoft.KeyVault.SecretNewVersionCreated"
    assert (ev["dataVersion"], ev["metadataVersion"]) == ("1", "1")
    assert ev["eventTime"].endswith("Z") and uuid.UUID(ev["id"])
    assert ev["data"] == {
        "Id": bundle["id"], "VaultName": feed_vault, "ObjectType": "Secret", "ObjectName": name,
        "Version": version, "NBF": None, "EXP": 1900000000,
    }
    assert ADMIN_SECRET_VALUE.encode() not in sub.raw


def test_every_kind_of_change_is_delivered_in_order(server, feed_vault, vault_token):
    name = f"k-{uuid.uuid4().hex[:6]}"
    sub = Subscription(events_url(server, feed_vault), vault_token, server.ca, params=[("subject", name)]).start()
    server.cli("keyvault", "secret", "set", "--vault-name", feed_vault, "--name", name, "--value", "v1")
    server.cli("keyvault", "secret", "set-attributes", "--vault-name", feed_vault, "--name", name, "--enabled", "false")
    server.cli("keyvault", "secret", "delete", "--vault-name", feed_vault, "--name", name)
    server.cli("keyvault", "secret", "recover", "--vault-name", feed_vault, "--name", name)
    server.cli("keyvault", "secret", "delete", "--vault-name", feed_vault, "--name", name)
    server.cli("keyvault", "secret", "purge", "--vault-name", feed_vault, "--name", name)
    messages = sub.wait_for(6)
    sub.close()
    assert [m.event["eventType"] for m in messages] == [
        "Microsoft.KeyVault.SecretNewVersionCreated",
        "Strongroom.KeyVault.SecretUpdated",
        "Strongroom.KeyVault.SecretDeleted",
        "Strongroom.KeyVault.SecretRecovered",
        "Strongroom.KeyVault.SecretDeleted",
        "Strongroom.KeyVault.SecretPurged",
    ]
    ids = [m.id for m in messages]
    assert ids == sorted(ids) and len(set(ids)) == 6
    assert {m.event["subject"] for m in messages} == {name}


def test_resume_from_a_sequence_number_has_no_gaps_or_duplicates(server, feed_vault, vault_token):
    first = Subscription(events_url(server, feed_vault), vault_token, server.ca).start()
    base = int(first.headers["strongroom-event-sequence"])
    for i in range(6):
        put_secret(server, feed_vault, f"r-{i}", "x", vault_token)
    got = first.wait_for(6)
    first.close()
    assert [m.id for m in got] == list(range(base + 1, base + 7))
    # The client "disconnected" after the third event; EventSource resumes with Last-Event-ID.
    resumed = Subscription(events_url(server, feed_vault), vault_token, server.ca, last_event_id=got[2].id).start()
    for i in range(6, 8):
        put_secret(server, feed_vault, f"r-{i}", "x", vault_token)
    again = resumed.wait_for(5)
    resumed.close()
    assert [m.id for m in again] == list(range(base + 4, base + 9))
    assert [m.event["id"] for m in again[:3]] == [m.event["id"] for m in got[3:]]
    # ?from=N starts at N (inclusive); Last-Event-ID wins over it, as EventSource keeps the URL when it reconnects.
    replay = Subscription(events_url(server, feed_vault), vault_token, server.ca, params=[("from", str(base + 2))]).start()
    assert [m.id for m in replay.wait_for(7)] == list(range(base + 2, base + 9))
    replay.close()
    both = Subscription(events_url(server, feed_vault), vault_token, server.ca, params=[("from", "1")],
                        last_event_id=base + 7).start()
    assert [m.id for m in both.wait_for(1)] == [base + 8]
    both.close()


def test_a_caller_sees_only_events_of_objects_it_may_read(server, feed_vault, vault_token):
    """A role on one secret shows that secret's events; the other secret's name never reaches the stream."""
    visible, hidden = f"mine-{uuid.uuid4().hex[:6]}", f"hidden-{uuid.uuid4().hex[:6]}"
    put_secret(server, feed_vault, visible, "x", vault_token)
    sp = make_sp(server, "feed")
    vault_id = server.cli_json("keyvault", "show", "--name", feed_vault)["id"]
    server.cli("role", "assignment", "create", "--role", "Key Vault Secrets User", "--assignee", sp.app_id,
               "--scope", f"{vault_id}/secrets/{visible}")
    token = sp_token(server, sp, vault_scope(server))
    nobody = make_sp(server, "feed-none")
    sub = Subscription(events_url(server, feed_vault), token, server.ca, params=[("from", "1")]).start()
    blind = Subscription(events_url(server, feed_vault), sp_token(server, nobody, vault_scope(server)), server.ca,
                         params=[("from", "1")]).start()
    put_secret(server, feed_vault, hidden, "x", vault_token)
    put_secret(server, feed_vault, visible, "y", vault_token)
    put_secret(server, feed_vault, hidden, "z", vault_token)
    admin = Subscription(events_url(server, feed_vault), vault_token, server.ca, params=[("from", "1")]).start()
    everything = admin.wait_for(10_000, timeout=2)  # the admin sees every event of the vault
    assert {hidden, visible} <= {m.event["subject"] for m in everything}
    mine = sub.wait_for(2)
    time.sleep(0.5)  # time for anything that should not come
    assert [m.event["subject"] for m in sub.messages] == [visible, visible]
    assert mine[0].id < mine[1].id
    assert hidden.encode() not in sub.raw and hidden.encode() not in blind.raw
    assert blind.status == 200 and blind.messages == []
    for s in (sub, blind, admin):
        s.close()


def test_errors_have_azure_shapes(server, feed_vault, vault_token):
    with http(server) as h:
        r = h.get(events_url(server, feed_vault))
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer authorization=")
        assert r.json()["error"]["code"] == "Unauthorized"
        auth = {"Authorization": f"Bearer {vault_token}"}
        for params, headers in [({"from": "abc"}, {}), ({"from": "-3"}, {}), ({}, {"Last-Event-ID": "x1"}),
                                ({"eventType": "Microsoft.KeyVault.SecretRenamed"}, {})]:
            r = h.get(events_url(server, feed_vault), params=params, headers={**auth, **headers})
            assert r.status_code == 400, (params, r.text)
            assert r.json()["error"]["code"] == "BadParameter"
        r = h.get(f"{server.vault_url('nosuchvault1')}/strongroom/events", headers=auth)
        assert r.status_code == 404 and r.json()["error"]["code"] == "VaultNotFound"


def test_event_type_filter(server, feed_vault, vault_token):
    name = f"f-{uuid.uuid4().hex[:6]}"
    sub = Subscription(events_url(server, feed_vault), vault_token, server.ca,
                       params=[("eventType", "Strongroom.KeyVault.SecretDeleted"), ("subject", name.upper())]).start()
    put_secret(server, feed_vault, name, "x", vault_token)
    server.cli("keyvault", "secret", "delete", "--vault-name", feed_vault, "--name", name)
    [msg] = sub.wait_for(1)
    time.sleep(0.3)
    sub.close()
    assert len(sub.messages) == 1 and msg.event["eventType"] == "Strongroom.KeyVault.SecretDeleted"


def test_subscribing_is_audited(server, feed_vault, vault_token):
    sub = Subscription(events_url(server, feed_vault), vault_token, server.ca).start()
    sub.close()
    records = server.cli_json("audit", "list", "--operation", "EventSubscribe", "--vault", feed_vault)
    assert records and records[-1]["resultSignature"] == "OK"
    assert records[-1]["resourceId"].lower().endswith(f"/vaults/{feed_vault}")
    assert records[-1]["properties"]["requestUri"].endswith("/strongroom/events")


def test_events_reach_subscribers_on_every_worker(tmp_path):
    """Two worker processes: writes answered by either reach subscriptions held by either, within a second or so."""
    srv = start_server(tmp_path, "--workers", "2")
    try:
        srv.cli("keyvault", "create", "--name", "kvfeed2")
        token = admin_token(srv, vault_scope(srv))
        subs = [Subscription(events_url(srv, "kvfeed2"), token, srv.ca).start() for _ in range(4)]
        latencies = []
        for i in range(8):  # a new connection per write: the kernel spreads them over both workers
            with httpx.Client(verify=srv.ssl_context) as h:
                r = h.put(f"{srv.vault_url('kvfeed2')}/secrets/w{i}", params={"api-version": "7.4"},
                          json={"value": "x"}, headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 200
            answered = time.monotonic()
            for s in subs:
                got = s.wait_for(i + 1, timeout=10)
                assert len(got) == i + 1, "an event did not arrive within 10 s"
                latencies.append(got[i].received - answered)
        for s in subs:
            assert [m.event["subject"] for m in s.messages] == [f"w{i}" for i in range(8)]
        latencies.sort()
        print(f"\nfeed latency across 2 workers, {len(latencies)} deliveries: median "
              f"{1000 * latencies[len(latencies) // 2]:.0f} ms, max {1000 * latencies[-1]:.0f} ms")
        # Open streams end when the server is told to stop, so they do not hold its shutdown.
        started = time.monotonic()
        srv.stop()
        assert time.monotonic() - started < 10
    finally:
        srv.stop()
