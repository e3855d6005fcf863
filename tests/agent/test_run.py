"""`strongroom run`: secrets in the child's environment, exit codes and signals passed through, reload on rotation."""

from __future__ import annotations

import signal
import sys
import textwrap
import time
from pathlib import Path

from azure.keyvault.secrets import SecretClient

from tests.agent.conftest import agent, agent_once, current_value, read, unique, wait_until

CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    out = sys.argv[1]
    def note(text):
        with open(out, "a") as f:
            f.write(f"{os.getpid()} {text}\\n")
    note("start " + os.environ["DB_PASSWORD"])
    def on_term(signum, frame):
        note("term")
        sys.exit(42)
    def on_hup(signum, frame):
        with open(os.path.join(os.environ["STRONGROOM_MOUNT_DIR"], "db-password")) as f:
            note("hup " + f.read())
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGUSR1, lambda s, f: note("usr1"))
    while True:
        time.sleep(0.05)
    """
)


def run_args(spc: Path, w, *extra: str) -> list[str]:
    return ["run", "--spc", str(spc), "--namespace", w.namespace, "--service-account", w.service_account, *extra]


def lines(path: Path) -> list[list[str]]:
    return [line.split(" ", 2) for line in (read(path) or "").splitlines()]


def test_secret_objects_become_variables_and_the_exit_code_passes_through(server, seed, spc_file, tmp_path):
    script = ("import os, sys; d = os.environ['STRONGROOM_MOUNT_DIR']; "
              "print(os.environ['DB_PASSWORD'], os.environ['PW'], d, oct(os.stat(d).st_mode & 0o777)); sys.exit(3)")
    proc = agent_once(server, *run_args(spc_file, seed, "--env", "PW=db-password", "--log-level", "warning",
                                        "--", sys.executable, "-c", script))
    assert proc.returncode == 3, proc.stderr
    db, pw, mount_dir, mode = proc.stdout.split()
    value = current_value(server, seed.vault)
    assert db == pw == value
    assert mode == "0o700"
    assert not Path(mount_dir).exists()  # the private directory is gone once the command exits
    assert value not in proc.stderr


def test_bad_variables_stop_the_command_before_it_starts(server, seed, spc_file, tmp_path):
    marker = tmp_path / "started"
    proc = agent_once(server, *run_args(spc_file, seed, "--env", "X=no-such-file", "--",
                                        sys.executable, "-c", f"open({str(marker)!r}, 'w')"))
    assert proc.returncode == 1 and not marker.exists()
    assert "no-such-file" in proc.stderr and "db-password" in proc.stderr
    proc = agent_once(server, *run_args(spc_file, seed, "--on-rotation", "reboot", "--", "true"))
    assert proc.returncode == 1 and "--on-rotation" in proc.stderr
    proc = agent_once(server, *run_args(spc_file, seed, "--", "no-such-command-xyz"))
    assert proc.returncode == 1 and "command not found" in proc.stderr


def test_rotation_restarts_the_child_with_the_new_value(server, seed, spc_file, admin_credential, tmp_path):
    w, spc = seed, spc_file
    out, log, script = tmp_path / "child.out", tmp_path / "run.log", tmp_path / "child.py"
    script.write_text(CHILD)
    client = SecretClient(server.vault_url(seed.vault), admin_credential, connection_verify=server.ca)
    first = client.get_secret("db-password").value
    proc = agent(server, *run_args(spc, w, "--grace-period", "5s", "--", sys.executable, str(script), str(out)), log=log)
    try:
        wait_until(lambda: lines(out) and "subscribed" in log.read_text(), timeout=20)
        [[pid1, what, value]] = lines(out)
        assert (what, value) == ("start", first)
        new = unique("run-rotated-")
        client.set_secret("db-password", new)
        answered = time.monotonic()
        wait_until(lambda: ["start", new] in [line[1:] for line in lines(out)])
        took = time.monotonic() - answered
        print(f"\nrun: restarted child has the new value {1000 * took:.0f} ms after the write was answered")
        assert took < 10
        pid2 = lines(out)[-1][0]
        assert lines(out)[1] == [pid1, "term"] and pid2 != pid1  # SIGTERM first, then a new process
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    assert lines(out)[-1][1] == "term"  # the signal reached the child ...
    assert code == 42  # ... and its exit code is ours


def test_signal_mode_keeps_the_process_and_forwards_signals(server, seed, spc_file, admin_credential, tmp_path):
    w, spc = seed, spc_file
    out, log, script = tmp_path / "child.out", tmp_path / "run.log", tmp_path / "child.py"
    script.write_text(CHILD)
    client = SecretClient(server.vault_url(seed.vault), admin_credential, connection_verify=server.ca)
    proc = agent(server, *run_args(spc, w, "--on-rotation", "signal:HUP", "--", sys.executable, str(script), str(out)),
                 log=log)
    try:
        wait_until(lambda: lines(out) and "subscribed" in log.read_text(), timeout=20)
        pid = lines(out)[0][0]
        new = unique("hup-")
        client.set_secret("db-password", new)
        wait_until(lambda: [pid, "hup", new] in lines(out))
        proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: [pid, "usr1"] in [line[:2] for line in lines(out)])
        assert {line[0] for line in lines(out)} == {pid}  # never restarted
    finally:
        proc.send_signal(signal.SIGINT)  # from a process (not the terminal): passed on; the child dies of it
        code = proc.wait(timeout=15)
    assert code == 128 + signal.SIGINT  # Python re-raises an unhandled SIGINT: the child died of it
