"""A private PostgreSQL cluster for the suite's PostgreSQL half (a pytest plugin, loaded by tests/conftest.py).

`pg_cluster` (session) runs the real server binaries from Debian's `postgresql`
package (or $STRONGROOM_PG_BIN): initdb in a temporary directory, its own port
on 127.0.0.1 and its unix socket in that directory, stopped and removed at the
end. PostgreSQL refuses to run as root, so under root the cluster runs as the
`postgres` user (or `nobody`) through `runuser`, in a directory it owns.

`start_standby(primary)` adds a streaming-replication standby of a cluster
(pg_basebackup -R, its own port), and `PgCluster.promote` / `replicate_synchronously`
drive a failover (tests/e2e/test_failover.py).

Where the binaries are missing the PostgreSQL tests are skipped and the run ends
with a loud summary line; with CI=true a missing PostgreSQL fails the run instead.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

_SKIPPED: list[str] = []


def pg_bin_dir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, newest version first; None if absent.

    $STRONGROOM_PG_BIN, when set, is the only place looked at (so a run can also pretend it is absent).
    """
    if "STRONGROOM_PG_BIN" in os.environ:
        candidates = [os.environ["STRONGROOM_PG_BIN"]]
    else:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                            key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path and "STRONGROOM_PG_BIN" not in os.environ:
        candidates.append(str(Path(on_path).parent))
    for c in candidates:
        if c and all((Path(c) / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgCluster:
    bin_dir: Path
    root: Path
    port: int
    run_as: str | None  # the unprivileged user the server runs as when we are root

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def _cmd(self, tool: str, *args: str) -> list[str]:
        cmd = [str(self.bin_dir / tool), *args]
        return ["runuser", "-u", self.run_as, "--", *cmd] if self.run_as else cmd

    def run(self, tool: str, *args: str, timeout: float = 120) -> None:
        proc = subprocess.run(self._cmd(tool, *args), capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self.run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def promote(self) -> None:
        """Make this standby the primary (`pg_ctl promote`, waiting until it accepts writes)."""
        self.run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "promote")

    def replicate_synchronously(self, timeout: float = 30) -> None:
        """Commit only once a standby has the WAL (so a promoted standby holds every answered write)."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            conn.execute("SELECT pg_reload_conf()")
            deadline = time.monotonic() + timeout
            while conn.execute("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'").fetchone()[0] == 0:  # type: ignore[index]
                if time.monotonic() > deadline:
                    raise RuntimeError("no synchronous standby streams from this cluster")
                time.sleep(0.05)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://strongroom@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return self.url(name)


def _run_as() -> str | None:
    """The unprivileged user PostgreSQL runs as when we are root (it refuses root); None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
        return "postgres"
    except KeyError:
        return "nobody"


def _new_cluster(bin_dir: Path, run_as: str | None) -> PgCluster:
    """A cluster object over a fresh private directory (owned by `run_as`) with its socket dir; nothing started."""
    root = Path(tempfile.mkdtemp(prefix="strongroom-pg-"))
    cluster = PgCluster(bin_dir, root, _free_port(), run_as)
    cluster.socket_dir.mkdir()
    if run_as:
        pw = pwd.getpwnam(run_as)
        os.chmod(root, 0o700)
        for path in (root, cluster.socket_dir):
            os.chown(path, pw.pw_uid, pw.pw_gid)
    return cluster


def start_cluster() -> PgCluster:
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")
    cluster = _new_cluster(bin_dir, _run_as())
    cluster.run("initdb", "-D", str(cluster.data), "-U", "strongroom", "--auth=trust", "-E", "UTF8", "--locale=C", "-N")
    cluster.start()
    return cluster


def start_standby(primary: PgCluster) -> PgCluster:
    """A hot standby streaming from `primary` (pg_basebackup -R: its recovery settings written for it), started."""
    standby = _new_cluster(primary.bin_dir, primary.run_as)
    standby.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "strongroom", "-D", str(standby.data),
                "-R", "-X", "stream", "-c", "fast", "--no-sync")  # the suite's clusters skip fsync at creation, as initdb -N
    # Recovery starts by syncing the data directory: one syncfs, not an fsync per file (seconds on a busy disk).
    with open(standby.data / "postgresql.auto.conf", "a") as conf:
        conf.write("recovery_init_sync_method = syncfs\n")
    standby.start()
    return standby


def remove_cluster(cluster: PgCluster) -> None:
    try:
        cluster.stop("immediate")
    except Exception:
        pass
    shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> PgCluster:
    try:
        cluster = start_cluster()
    except FileNotFoundError as exc:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"CI=true but PostgreSQL is missing ({exc}); .ci/run installs it", pytrace=False)
        _SKIPPED.append(str(exc))
        pytest.skip(f"PostgreSQL half skipped: {exc}")
    yield cluster
    remove_cluster(cluster)


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh, empty database on the session's cluster."""
    return pg_cluster.create_database()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    reasons = list(_SKIPPED)
    # Under pytest-xdist the fixture ran in a worker process: the skip reports that reach this one carry the reason.
    for report in terminalreporter.stats.get("skipped", []):
        if isinstance(report.longrepr, tuple) and "PostgreSQL half skipped: " in report.longrepr[2]:
            reasons.append(report.longrepr[2].split("PostgreSQL half skipped: ", 1)[1])
    if reasons:
        terminalreporter.write_sep("!", "PostgreSQL HALF OF THE SUITE SKIPPED", red=True, bold=True)
        terminalreporter.write_line(
            f"{reasons[0]}. Install it (Debian: apt-get install postgresql) or set STRONGROOM_PG_BIN; "
            "CI (CI=true) fails instead of skipping.", red=True, bold=True,
        )
