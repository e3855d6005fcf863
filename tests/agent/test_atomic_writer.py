"""Kubernetes' atomic writer layout, and what a reader sees when the writer dies at any step (SIGKILL)."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from strongroom.agent.atomic_writer import AtomicWriter, Payload, WriteError

TS_DIR = re.compile(r"^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+$")
OLD = [Payload("db-password", 0o644, b"old-password"), Payload("history/0", 0o640, b"h0-old"),
       Payload("history/1", 0o640, b"h1-old"), Payload("gone", 0o600, b"stale" * 1000)]
NEW = [Payload("db-password", 0o644, b"new-password" * 5000), Payload("history/0", 0o640, b"h0-new"),
       Payload("history/1", 0o640, b"h1-new"), Payload("added", 0o400, b"fresh")]


def visible(target: Path) -> dict[str, bytes]:
    """What an application reading the directory through its visible names gets."""
    out: dict[str, bytes] = {}
    for entry in sorted(os.listdir(target)):
        if entry.startswith(".."):
            continue
        path = target / entry
        if path.is_dir():
            for sub in sorted(os.listdir(path)):
                out[f"{entry}/{sub}"] = (path / sub).read_bytes()
        elif path.exists():
            out[entry] = path.read_bytes()
    return out


def as_dict(payload: list[Payload]) -> dict[str, bytes]:
    return {p.path: p.contents for p in payload}


def test_layout_is_the_kubelet_one(tmp_path: Path):
    target = tmp_path / "mnt"
    assert AtomicWriter(target).write(OLD) is True
    names = sorted(os.listdir(target))
    [ts] = [n for n in names if TS_DIR.match(n)]
    assert names == sorted([ts, "..data", "db-password", "gone", "history"])
    assert os.readlink(target / "..data") == ts
    assert os.readlink(target / "db-password") == "..data/db-password"
    assert os.readlink(target / "history") == "..data/history"  # one link per top-level name
    assert visible(target) == as_dict(OLD)
    assert stat.S_IMODE((target / ts / "gone").stat().st_mode) == 0o600
    assert stat.S_IMODE((target / ts / "history" / "0").stat().st_mode) == 0o640
    assert stat.S_IMODE((target / ts / "history").stat().st_mode) == 0o700  # outside kubelet: private by default
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


def test_unchanged_payload_touches_nothing_and_a_change_swaps_generations(tmp_path: Path):
    target = tmp_path / "mnt"
    w = AtomicWriter(target)
    w.write(OLD)
    before = os.readlink(target / "..data")
    assert w.write(list(reversed(OLD))) is False
    assert os.readlink(target / "..data") == before
    assert w.write(NEW) is True
    after = os.readlink(target / "..data")
    assert after != before and not (target / before).exists()  # the old generation is gone
    assert not (target / "gone").is_symlink()  # stale names removed
    assert visible(target) == as_dict(NEW)
    assert stat.S_IMODE((target / after / "added").stat().st_mode) == 0o400
    # A mode change alone is a change too.
    assert w.write([*NEW[:3], Payload("added", 0o444, b"fresh")]) is True


def test_bad_payloads_are_refused_before_anything_is_written(tmp_path: Path):
    target = tmp_path / "mnt"
    w = AtomicWriter(target)
    w.write(OLD)
    for bad in ["/etc/passwd", "..data", "..x", "a/../b", "a//b", "./a", "x" * 256, ""]:
        with pytest.raises(WriteError):
            w.write([Payload(bad, 0o644, b"x")])
    with pytest.raises(WriteError):
        w.write([Payload("a", 0o644, b"1"), Payload("a", 0o644, b"2")])
    with pytest.raises(WriteError):
        w.write([Payload("a", 0o644, b"1"), Payload("a/b", 0o644, b"2")])
    with pytest.raises(WriteError):
        w.write([Payload("a", 0o1777, b"1")])
    assert visible(target) == as_dict(OLD)


def test_foreign_files_are_left_alone(tmp_path: Path):
    target = tmp_path / "mnt"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    (target / "elsewhere").symlink_to("/tmp")
    w = AtomicWriter(target)
    w.write(OLD)
    w.write(NEW)
    assert (target / "notes.txt").read_text() == "mine" and os.readlink(target / "elsewhere") == "/tmp"
    (target / "added").unlink()
    (target / "added").write_text("a user's file where a link should be")
    with pytest.raises(WriteError):
        w.write([Payload("added", 0o644, b"other")])


def test_two_writers_on_one_directory_are_refused(tmp_path: Path):
    target = tmp_path / "mnt"
    holder = AtomicWriter(target, step=lambda name: name == "dir-written" and blocked())

    def blocked() -> None:
        with pytest.raises(WriteError, match="another process"):
            AtomicWriter(target).write(NEW)

    holder.write(OLD)


_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from strongroom.agent.atomic_writer import AtomicWriter, Payload
    target, at, hits = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seen = []
    def step(name):
        if name == at:
            seen.append(name)
            if len(seen) == hits:
                os.kill(os.getpid(), signal.SIGKILL)
    new = [Payload("db-password", 0o644, b"new-password" * 5000), Payload("history/0", 0o640, b"h0-new"),
           Payload("history/1", 0o640, b"h1-new"), Payload("added", 0o400, b"fresh")]
    AtomicWriter(target, step=step).write(new)
    """
)


@pytest.mark.parametrize(
    "step,hits",
    [("mid-file", 1), ("mid-file", 3), ("dir-written", 1), ("tmp-linked", 1), ("swapped", 1), ("linked", 1), ("unlinked", 1)],
)
def test_sigkill_at_any_step_leaves_old_or_new_in_full(tmp_path: Path, step: str, hits: int):
    target = tmp_path / "mnt"
    AtomicWriter(target).write(OLD)
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(target), step, str(hits)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    data = os.readlink(target / "..data")
    generation = {p.relative_to(target / data).as_posix(): p.read_bytes()
                  for p in (target / data).rglob("*") if p.is_file()}
    # `..data` names a complete generation: every file whole, nothing of the other one.
    assert generation in (as_dict(OLD), as_dict(NEW))
    # Through the visible names a reader gets only that generation's contents (a name that is
    # not (yet/any more) part of it dangles, as between the kubelet writer's steps).
    for name, contents in visible(target).items():
        assert generation[name] == contents
    if step in ("mid-file", "dir-written", "tmp-linked"):
        assert generation == as_dict(OLD)
    else:
        assert generation == as_dict(NEW)
    # The next write clears what the dead writer left and converges.
    AtomicWriter(target).write(NEW)
    assert visible(target) == as_dict(NEW)
    leftovers = [n for n in os.listdir(target) if n.startswith("..")]
    assert sorted(leftovers) == sorted(["..data", os.readlink(target / "..data")])
    assert not (target / "gone").is_symlink()
