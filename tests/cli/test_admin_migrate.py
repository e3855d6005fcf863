"""`strongroom admin migrate`: a SQLite instance copied into PostgreSQL reads the same through a server there."""

from __future__ import annotations

import psycopg

from tests.conftest import Server, free_port, start_server
from tests.e2e.test_postgresql_server import sdk_client
from tests.pgcluster import PgCluster


def test_a_sqlite_instance_migrated_to_postgresql_reads_the_same(tmp_path, pg_cluster: PgCluster):
    target = pg_cluster.create_database()
    srv = start_server(tmp_path / "a")
    srv.cli("keyvault", "create", "--name", "kvmig")
    client = sdk_client(srv, "kvmig")
    versions = {client.set_secret("rotating", f"v{i}").properties.version: f"v{i}" for i in range(3)}
    for i in range(30):
        client.set_secret(f"s-{i:02d}", f"value-{i}")
    client.begin_delete_secret("s-29").wait()
    client.close()
    source = f"sqlite:///{srv.state_dir / 'strongroom.db'}"

    refused = srv.cli("admin", "migrate", "--from", source, "--to", target, check=False)
    assert refused.returncode != 0 and "stop it first" in refused.stderr  # the server still runs on it

    srv.stop()
    done = srv.cli("admin", "migrate", "--from", source, "--to", target)
    assert "records" in done.stdout and "stream entries" in done.stdout
    with psycopg.connect(target) as conn:  # sealed as they were: no plaintext value in the target
        values = b"".join(bytes(r[0]) for r in conn.execute("SELECT value FROM entries"))
        assert values and b"value-1" not in values

    again = srv.cli("admin", "migrate", "--from", source, "--to", target, check=False)
    assert again.returncode != 0 and "already holds data" in again.stderr and "--force" in again.stderr
    srv.cli("admin", "migrate", "--from", source, "--to", target, "--force")  # repeatable: nothing doubles

    # The same state dir (master key, certificates), storage on PostgreSQL.
    on_pg = Server(srv.state_dir, free_port(), extra_args=["--storage", target]).start()
    try:
        client = sdk_client(on_pg, "kvmig")
        assert client.get_secret("rotating").value == "v2"
        assert {v: client.get_secret("rotating", v).value for v in versions} == versions
        assert sorted(p.name for p in client.list_properties_of_secrets()) == ["rotating"] + [f"s-{i:02d}" for i in range(29)]
        assert client.get_deleted_secret("s-29").name == "s-29"
        client.set_secret("after", "new")  # the change feed continues after the copied numbers
        client.close()
        audit = on_pg.cli_json("audit", "verify", "--storage", target)  # the hash chain continued on PostgreSQL
        assert audit["records"] > 0
    finally:
        on_pg.stop()
