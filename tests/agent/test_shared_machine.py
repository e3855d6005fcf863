"""`strongroom mount` on a machine shared with another local user, who plants links to hurt the agent's user.

The agent runs as this test's user (root in CI); the attacker is a real second
user: `nobody` (uid 65534), whose steps run through `setpriv`. The victim is a
directory and a file outside the target that the attacker cannot write itself
but would like the agent to remove, overwrite or read for it. Before the fix the
writer followed a planted `..data` link and removed the directory it named, and
wrote the status through a planted temp-file link.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.agent.conftest import agent_once, current_value

NOBODY = 65534
PRECIOUS = b"the victim's own data\n"


def as_nobody(*cmd: str) -> None:
    """Run `cmd` as the second local user (needs root to switch, as any test here that attacks as another user)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("switching to a second local user needs root and setpriv")
    subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *cmd], check=True)


@pytest.fixture
def shared(tmp_path: Path):
    """A directory both users can reach (pytest's own tmp dirs are private to the agent's user)."""
    base = Path(tempfile.mkdtemp(prefix="sr-shared-"))
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    d = tmp_path / "victim"
    d.mkdir()
    (d / "precious").write_bytes(PRECIOUS)
    (d / "db-password").write_bytes(PRECIOUS)
    return d


def untouched(victim: Path) -> bool:
    return (
        victim.is_dir() and sorted(os.listdir(victim)) == ["db-password", "precious"]
        and all((victim / n).read_bytes() == PRECIOUS for n in ("precious", "db-password"))
    )


def mount(server, seed, spc_file: Path, target: Path, *extra: str) -> subprocess.CompletedProcess:
    return agent_once(server, "mount", "--spc", str(spc_file), "--namespace", seed.namespace,
                      "--service-account", seed.service_account, "--target", str(target), *extra)


def plant_everything(target: Path, victim: Path) -> None:
    """Every link the second user can leave in a directory it may write."""
    as_nobody("ln", "-s", str(victim), str(target / "..data"))
    as_nobody("ln", "-s", str(victim / "precious"), str(target / "..data_tmp"))
    as_nobody("ln", "-s", str(victim / "precious"), str(target / "..status.json"))
    as_nobody("ln", "-s", str(victim / "precious"), str(target / "..status.json.tmp"))
    as_nobody("ln", "-s", str(victim), str(target / "..2020_01_01_00_00_00.1"))
    as_nobody("ln", "-s", str(victim / "db-password"), str(target / "db-password"))


def test_a_target_others_may_write_is_refused_and_nothing_outside_is_touched(server, seed, spc_file, shared, victim):
    target = shared / "mnt"
    target.mkdir()
    os.chmod(target, 0o777)
    plant_everything(target, victim)
    proc = mount(server, seed, spc_file, target)
    assert untouched(victim)
    assert proc.returncode != 0
    assert "writable by" in proc.stderr and "--allow-shared-target" in proc.stderr


def test_a_target_another_user_owns_is_refused(server, seed, spc_file, shared, victim):
    target = shared / "theirs"
    target.mkdir(mode=0o700)
    os.chown(target, NOBODY, NOBODY)
    as_nobody("ln", "-s", str(victim), str(target / "..data"))
    proc = mount(server, seed, spc_file, target)
    assert untouched(victim)
    assert proc.returncode != 0 and "belongs to uid 65534" in proc.stderr


def test_a_target_that_is_a_planted_link_is_not_followed(server, seed, spc_file, shared, victim, tmp_path):
    """The target name itself replaced by a link (e.g. in a world-writable parent) to the victim directory."""
    parent = shared / "pub"
    parent.mkdir()
    os.chmod(parent, 0o1777)
    as_nobody("ln", "-s", str(victim), str(parent / "mnt"))
    proc = mount(server, seed, spc_file, parent / "mnt")
    assert proc.returncode != 0 and "symbolic link made by uid 65534" in proc.stderr
    assert untouched(victim)


def test_shared_on_purpose_the_writer_still_follows_no_planted_link(server, seed, spc_file, shared, victim):
    target = shared / "mnt"
    target.mkdir()
    os.chmod(target, 0o1777)
    plant_everything(target, victim)
    proc = mount(server, seed, spc_file, target, "--allow-shared-target")
    assert proc.returncode == 0, proc.stderr
    assert untouched(victim)
    # The mount replaced the planted names with its own: a real generation inside the target.
    data = os.readlink(target / "..data")
    assert "/" not in data and (target / data).is_dir() and not (target / data).is_symlink()
    assert (target / "db-password").read_text() == current_value(server, seed.vault)
    assert os.readlink(target / "db-password") == "..data/db-password"
    status = target / "..status.json"
    assert not status.is_symlink() and stat.S_IMODE(status.stat().st_mode) == 0o600
    assert b"SecretProviderClassPodStatus" in status.read_bytes()
    # A second mount (nothing changed) leaves it all as it is and still touches nothing outside.
    assert mount(server, seed, spc_file, target, "--allow-shared-target").returncode == 0
    assert untouched(victim)


def test_file_mode_widens_files_and_directories_together(server, seed, spc_file, tmp_path):
    target = tmp_path / "mnt"
    proc = mount(server, seed, spc_file, target, "--file-mode", "0640")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((target / "db-password").stat().st_mode) == 0o640
    assert stat.S_IMODE((target / os.readlink(target / "..data")).stat().st_mode) == 0o750
    for bad in ("rw", "0o1000", "0200"):
        proc = mount(server, seed, spc_file, tmp_path / "m2", "--file-mode", bad)
        assert proc.returncode == 1 and "--file-mode" in proc.stderr
