"""The vault goes away during rotation: the files stay as they were, the agent backs off, and catches up when it returns."""

from __future__ import annotations

import os
import signal
import time

from tests.agent.conftest import agent, federate, read, set_secret, spc_yaml, unique, wait_until
from tests.conftest import start_server


def test_server_stopped_during_rotation_keeps_old_files_and_the_agent_recovers(tmp_path):
    srv = start_server(tmp_path / "srv")
    proc = None
    try:
        vault, rg = unique("kvfault"), unique("rg-")
        srv.cli("keyvault", "create", "--name", vault, "-g", rg)
        set_secret(srv, vault, "db-password", "before-outage")
        w = federate(srv, vault, rg, "faults")
        spc = tmp_path / "spc.yaml"
        spc.write_text(spc_yaml(w))
        target, log = tmp_path / "mnt", tmp_path / "agent.log"
        proc = agent(srv, "mount", "--spc", str(spc), "--namespace", w.namespace, "--service-account", w.service_account,
                     "--target", str(target), "--watch", "--rotation-poll-interval", "1s", log=log)
        wait_until(lambda: read(target / "db-password") == "before-outage" and "subscribed" in log.read_text(), timeout=20)
        generation = os.readlink(target / "..data")

        srv.stop()
        wait_until(lambda: "keeping the current files" in log.read_text(), timeout=15)
        time.sleep(2)  # several failed polls and reconnects
        assert read(target / "db-password") == "before-outage"
        assert os.readlink(target / "..data") == generation  # not even rewritten
        text = log.read_text()
        assert "change feed unavailable" in text and "retrying in" in text
        assert proc.poll() is None

        srv.start()
        restarted = time.monotonic()
        set_secret(srv, vault, "db-password", "after-outage")  # before the agent's next retry, most likely
        wait_until(lambda: read(target / "db-password") == "after-outage", timeout=30)
        print(f"\nagent caught up {time.monotonic() - restarted:.1f} s after the server came back")
        wait_until(lambda: "succeeded again" in log.read_text())  # logged right after the files are written
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        srv.stop()
