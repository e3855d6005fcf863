"""`strongroom run`: the secrets as environment variables of a child process, restarted or signalled on rotation.

What the driver's secret sync plus `env: valueFrom: secretKeyRef` plus Reloader do
for a pod: each `secretObjects[].data[]` entry of the SecretProviderClass becomes
a variable named by its `key`, holding the mounted file named by its
`objectName`; `--env NAME=FILE` adds more. The child also gets
`STRONGROOM_MOUNT_DIR`, the private directory (mode 0700) where the files are
mounted and kept current, for programs that read files.

The supervisor is the child's parent in the way tini is: signals sent to it
(SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) are passed on, and its exit
code is the child's (128 + N when the child died of signal N). A SIGINT or
SIGQUIT typed at the terminal already reaches the child, which shares the
terminal's process group, so on Linux only signals sent by a process are passed
on (siginfo tells them apart); elsewhere every signal is passed on.

On rotation: `restart` (the default, Reloader's behaviour) sends SIGTERM, waits
up to the grace period, sends SIGKILL if needed, and starts the command again
with fresh variables; `signal:NAME` sends that signal (e.g. `signal:HUP`);
`none` leaves the child alone (the files still change).
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from strongroom.csi.spc import SecretProviderClass

log = logging.getLogger("strongroom.agent")

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
STOPPING = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
MOUNT_DIR_VARIABLE = "STRONGROOM_MOUNT_DIR"
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*\Z")  # Kubernetes' rule for envFrom names
SI_KERNEL = 0x80
TICK = 0.05


class RunError(Exception):
    """The command cannot be (re)started; the message says why, without any value."""


@dataclass(frozen=True)
class OnRotation:
    mode: str  # "restart" | "signal" | "none"
    signum: int | None = None

    @classmethod
    def parse(cls, text: str) -> OnRotation:
        if text in ("restart", "none"):
            return cls(text)
        if text.startswith("signal:"):
            name = text.split(":", 1)[1].upper()
            name = name if name.startswith("SIG") else "SIG" + name
            signum = getattr(signal, name, None)
            if isinstance(signum, signal.Signals) and name not in ("SIGKILL", "SIGSTOP"):
                return cls("signal", int(signum))
        raise ValueError(f"--on-rotation must be restart, none or signal:NAME (e.g. signal:HUP), not {text!r}")


def parse_env_flags(values: list[str]) -> list[tuple[str, str]]:
    out = []
    for v in values:
        name, sep, file = v.partition("=")
        if not sep or not name or not file:
            raise ValueError(f"--env {v!r}: expected NAME=objectAlias (the mounted file name)")
        if not ENV_NAME.match(name):
            raise ValueError(f"--env {v!r}: {name!r} is not a valid variable name")
        out.append((name, file))
    return out


def environment(mount_dir: Path, spc: SecretProviderClass, extra: list[tuple[str, str]]) -> dict[bytes, bytes]:
    """The child's environment: ours, plus one variable per secretObjects key and per --env."""
    env = dict(os.environb)
    wanted: list[tuple[str, str, str]] = []
    for i, so in enumerate(spc.secret_objects):
        for j, d in enumerate(so.data):
            wanted.append((d.key, d.object_name, f"secretObjects[{i}].data[{j}]"))
    wanted += [(name, file, f"--env {name}") for name, file in extra]
    for name, file, where in wanted:
        if not ENV_NAME.match(name):
            log.warning("%s: key %r is not a valid environment variable name; skipped (as Kubernetes' envFrom does)", where, name)
            continue
        path = mount_dir / file
        try:
            value = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            mounted = sorted(p for p in os.listdir(mount_dir) if not p.startswith(".."))
            raise RunError(f"{where}: objectName {file!r} is not a mounted file (mounted: {', '.join(mounted) or 'none'})") from None
        if b"\0" in value:
            raise RunError(f"{where}: the value of {file!r} contains a NUL byte, which an environment variable cannot hold")
        env[name.encode()] = value
    env[MOUNT_DIR_VARIABLE.encode()] = os.fsencode(str(mount_dir))
    return env


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128 + the signal that killed it."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class Supervisor:
    """Runs the command; `rotations` receives one item per rotation (from the rotation thread)."""

    def __init__(
        self,
        command: list[str],
        build_env: Callable[[], dict[bytes, bytes]],
        on_rotation: OnRotation,
        grace: float,
        rotations: queue.Queue[object],
    ) -> None:
        self.command = command
        self.build_env = build_env
        self.on_rotation = on_rotation
        self.grace = grace
        self.rotations = rotations
        self.pid: int | None = None
        self.restarts = 0
        self._siginfo = hasattr(signal, "sigtimedwait")
        self._pending: list[int] = []

    # -- signals ------------------------------------------------------------------

    def install_signals(self) -> None:
        """Call before starting any thread: blocked signals are then waited for here, not delivered elsewhere."""
        if self._siginfo:
            signal.pthread_sigmask(signal.SIG_BLOCK, {*FORWARDED, signal.SIGCHLD})
        else:
            for sig in FORWARDED:
                signal.signal(sig, lambda signum, _frame: self._pending.append(signum))

    def _next_signal(self, timeout: float) -> tuple[int, bool] | None:
        """(signal, sent by a process) or None."""
        if self._siginfo:
            info = signal.sigtimedwait({*FORWARDED, signal.SIGCHLD}, timeout)
            if info is None:
                return None
            return info.si_signo, info.si_code != SI_KERNEL
        if self._pending:
            return self._pending.pop(0), True
        time.sleep(timeout)
        return None

    def wait_for_stop(self, seconds: float) -> int | None:
        """Sleep up to `seconds` (before the child runs); return a stopping signal if one arrives."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            got = self._next_signal(min(remaining, TICK * 4))
            if got is not None and got[0] in STOPPING:
                return got[0]
        return None

    # -- the child ----------------------------------------------------------------

    def _start(self, env: dict[bytes, bytes]) -> None:
        try:
            self.pid = os.posix_spawnp(
                self.command[0], self.command, env, setsigmask=(), setsigdef=(*FORWARDED, signal.SIGCHLD)
            )
        except FileNotFoundError:
            raise RunError(f"{self.command[0]}: command not found") from None
        except PermissionError:
            raise RunError(f"{self.command[0]}: permission denied") from None
        log.info("started %s (pid %d)", self.command[0], self.pid)

    def _reap(self) -> int | None:
        assert self.pid is not None
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        return None if pid == 0 else exit_code(status)

    def _send(self, signum: int) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def run(self) -> int:
        """Start the command and supervise it until it exits for good; returns its exit code."""
        self._start(self.build_env())
        stopping = False
        restart_env: dict[bytes, bytes] | None = None
        kill_at: float | None = None
        while True:
            got = self._next_signal(TICK)
            if got is not None and got[0] != signal.SIGCHLD:
                signum, sent = got
                if sent:
                    self._send(signum)
                if signum in STOPPING:
                    stopping = True
                    restart_env = None  # a stop wins over a pending restart
            code = self._reap()
            if code is not None:
                if restart_env is not None and not stopping:
                    try:
                        restart_env = self.build_env()  # the newest files, if more rotated meanwhile
                    except RunError as exc:
                        log.warning("using the variables read at the rotation: %s", exc)
                    self._start(restart_env)
                    self.restarts += 1
                    restart_env, kill_at = None, None
                    continue
                return code
            if kill_at is not None and time.monotonic() >= kill_at:
                log.warning("%s did not stop within %.0f s of SIGTERM; sending SIGKILL", self.command[0], self.grace)
                self._send(signal.SIGKILL)
                kill_at = None
            if not stopping and self._rotated():
                if self.on_rotation.mode == "restart" and restart_env is None:
                    try:
                        restart_env = self.build_env()
                    except RunError as exc:
                        log.error("not restarting %s: %s", self.command[0], exc)
                        continue
                    log.info("secrets rotated: restarting %s (SIGTERM, then SIGKILL after %.0f s)", self.command[0], self.grace)
                    self._send(signal.SIGTERM)
                    kill_at = time.monotonic() + self.grace
                elif self.on_rotation.mode == "signal" and self.on_rotation.signum is not None:
                    log.info("secrets rotated: sending %s to %s", signal.Signals(self.on_rotation.signum).name, self.command[0])
                    self._send(self.on_rotation.signum)

    def _rotated(self) -> bool:
        rotated = False
        while True:
            try:
                self.rotations.get_nowait()
                rotated = True
            except queue.Empty:
                return rotated


def private_dir() -> Path:
    """A fresh directory only we can enter, on tmpfs when the session has one (XDG_RUNTIME_DIR)."""
    import tempfile

    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(tempfile.mkdtemp(prefix="strongroom-run-", dir=base if base and os.path.isdir(base) else None))
    os.chmod(path, 0o700)
    return path


def remove_private_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        print(f"strongroom run: could not remove {path}", file=sys.stderr)
