"""The agent's small parts on their own: flags, the child's environment, exit codes, backoff, SSE framing."""

from __future__ import annotations

import os
import random
import signal
import sys
from pathlib import Path

import pytest

from strongroom.agent.atomic_writer import AtomicWriter, Payload
from strongroom.agent.backoff import Backoff
from strongroom.agent.supervisor import (
    MOUNT_DIR_VARIABLE,
    OnRotation,
    RunError,
    environment,
    exit_code,
    parse_env_flags,
)
from strongroom.cli.client import CLIError
from strongroom.cli.mount import parse_go_duration
from strongroom.csi.spc import parse_spc

SPC = """
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: c}
spec:
  provider: azure
  secretObjects:
    - secretName: s
      type: Opaque
      data:
        - {objectName: db-password, key: DB_PASSWORD}
        - {objectName: tls/0, key: tls.crt}
        - {objectName: db-password, key: "not valid"}
  parameters:
    keyvaultName: kv1
    tenantId: t
    objects: |
      array:
        - |
          objectName: db-password
          objectType: secret
"""


def test_go_durations():
    assert parse_go_duration("2m", "--x") == 120
    assert parse_go_duration("1h30m", "--x") == 5400
    assert parse_go_duration("500ms", "--x") == 0.5
    assert parse_go_duration("1.5s", "--x") == 1.5
    for bad in ["", "2", "m", "2 m", "2d", "-1s", "0s", "1s2"]:
        with pytest.raises(CLIError):
            parse_go_duration(bad, "--x")


def test_on_rotation_and_env_flags():
    assert OnRotation.parse("restart") == OnRotation("restart")
    assert OnRotation.parse("signal:HUP") == OnRotation("signal", signal.SIGHUP)
    assert OnRotation.parse("signal:SIGUSR1") == OnRotation("signal", signal.SIGUSR1)
    for bad in ["signal:KILL", "signal:NOPE", "reload", "signal:"]:
        with pytest.raises(ValueError):
            OnRotation.parse(bad)
    assert parse_env_flags(["A=db-password", "B_2=x/0"]) == [("A", "db-password"), ("B_2", "x/0")]
    for bad in ["A", "=x", "A=", "1A=x", "A B=x"]:
        with pytest.raises(ValueError):
            parse_env_flags([bad])


def test_environment_from_secret_objects(tmp_path: Path):
    AtomicWriter(tmp_path).write([Payload("db-password", 0o644, b"pw"), Payload("tls/0", 0o644, b"-----CERT-----\n")])
    env = environment(tmp_path, parse_spc(SPC), [("EXTRA", "tls/0")])
    assert env[b"DB_PASSWORD"] == b"pw"
    assert env[b"tls.crt"] == b"-----CERT-----\n"  # Kubernetes' envFrom rule allows dots
    assert b"not valid" not in env  # skipped, as envFrom skips it
    assert env[b"EXTRA"] == b"-----CERT-----\n"
    assert env[MOUNT_DIR_VARIABLE.encode()] == os.fsencode(str(tmp_path))
    with pytest.raises(RunError, match="'missing' is not a mounted file"):
        environment(tmp_path, parse_spc(SPC), [("X", "missing")])
    AtomicWriter(tmp_path).write([Payload("db-password", 0o644, b"a\0b"), Payload("tls/0", 0o644, b"c")])
    with pytest.raises(RunError, match="NUL") as info:
        environment(tmp_path, parse_spc(SPC), [])
    assert "a\0b" not in str(info.value)


def _raw_status(code: str) -> int:
    pid = os.posix_spawn(sys.executable, [sys.executable, "-c", code], dict(os.environ))
    return os.waitpid(pid, 0)[1]


def test_exit_codes_as_a_shell_reports_them():
    for code in (0, 3, 255):
        assert exit_code(_raw_status(f"import sys; sys.exit({code})")) == code
    assert exit_code(_raw_status("import os, signal; os.kill(os.getpid(), signal.SIGTERM)")) == 128 + signal.SIGTERM


def test_backoff_grows_with_jitter_and_stays_capped():
    b = Backoff(base=0.5, cap=30.0, rng=random.Random(7))
    delays = [b.next() for _ in range(12)]
    for i, d in enumerate(delays[:6]):
        ceiling = min(30.0, 0.5 * 2**i)
        assert ceiling / 2 <= d <= ceiling
    assert all(15.0 <= d <= 30.0 for d in delays[7:])
    assert len({round(d, 6) for d in delays}) == len(delays)  # jitter: no two alike
    for _ in range(2000):
        b.next()  # never overflows
    b.reset()
    assert b.next() <= 0.5


def test_sse_framing_and_name_filter():
    import threading

    import httpx

    from strongroom.agent.feed_client import FeedClient

    got: list[dict] = []
    client = FeedClient(lambda: None, ["Db-Password"], None, got.append, lambda: None, threading.Event())
    body = (
        b"retry: 1000\r\n\r\n"
        b": keepalive\r\n\r\n"
        b'id: 7\r\ndata: {"subject":"db-password",\r\ndata: "data":{"ObjectName":"db-password"}}\r\n\r\n'
        b"id: 8\n\n"  # an id without data moves the position, dispatches nothing
        b'id: 9\ndata: {"subject":"other","data":{"ObjectName":"other"}}\n\n'
        b"id: 10\ndata: not json\n\n"
    )
    client._read(httpx.Response(200, content=body))
    assert got == [{"subject": "db-password", "data": {"ObjectName": "db-password"}}]
    assert client.last_id == 10
