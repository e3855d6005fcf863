"""Kubernetes' atomic writer (pkg/volume/util/atomic_writer.go), with fsync, for a directory of secret files.

Layout of a target directory, as kubelet and the Secrets Store CSI Driver leave it:

    ..2026_07_01_12_00_00.1234567890/   the files of one generation (the "timestamped dir")
        db-password
        history/0, history/1
    ..data -> ..2026_07_01_12_00_00.1234567890
    db-password -> ..data/db-password     one symlink per top-level name
    history -> ..data/history

An update writes a complete new timestamped dir, points `..data_tmp` at it and
renames `..data_tmp` over `..data` (rename(2) is atomic), then adds symlinks
for new names, removes those of names that are gone and deletes the old dir.
A reader that opens `db-password` resolves `..data` once, so it gets either
the old or the new generation in full, never a mix and never a half-written
file. Unlike the Kubernetes code, every file and directory is fsynced before
`..data` moves and the target directory after, so the same holds after a
crash or `kill -9` at any point: the next write clears what a dead writer
left (`..data_tmp`, unreferenced timestamped dirs, dangling symlinks).

Only one writer per target directory: an exclusive flock on the directory
itself keeps a second agent from interleaving.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

DATA_DIR = "..data"
NEW_DATA_DIR = "..data_tmp"
MAX_FILE_NAME = 255
MAX_PATH = 4096
DIR_MODE = 0o700  # outside kubelet only the agent's user reads the files (--file-mode widens it)
FSYNC_BATCH = 64  # files written and held open before they are fsynced together (bounds open descriptors)
FSYNC_THREADS = 8
_FSYNC_POOL: ThreadPoolExecutor | None = None
_FSYNC_POOL_LOCK = threading.Lock()


class WriteError(Exception):
    """The payload could not be written; the previous generation is still in place."""


@dataclass(frozen=True)
class Payload:
    path: str  # relative, '/'-separated
    mode: int
    contents: bytes = field(repr=False)


def validate_path(path: str) -> None:
    """Kubernetes' rules for a payload path (validatePath)."""
    if not path:
        raise WriteError("a file path is empty")
    if len(path) > MAX_PATH:
        raise WriteError(f"file path {path[:60]!r}... is longer than {MAX_PATH} characters")
    if path.startswith("/"):
        raise WriteError(f"file path {path!r} must be relative")
    if path.startswith(".."):
        raise WriteError(f"file path {path!r} must not start with '..'")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise WriteError(f"file path {path!r} must not contain empty, '.' or '..' elements")
        if len(part) > MAX_FILE_NAME:
            raise WriteError(f"a name in file path {path[:60]!r} is longer than {MAX_FILE_NAME} characters")
        if "\0" in part:
            raise WriteError("a file path contains a NUL character")


def _fsync_all(fds: list[int]) -> None:
    """fsync every descriptor, side by side: the filesystem commits them together.

    One after the other, ten small files took ~7 ms on ext4; together ~2 ms. All of
    them are durable when this returns, which is all the writer relies on (the
    directory fsync and the `..data` swap come after).
    """
    if len(fds) < 2:
        for fd in fds:
            os.fsync(fd)
        return
    global _FSYNC_POOL
    with _FSYNC_POOL_LOCK:
        if _FSYNC_POOL is None:
            _FSYNC_POOL = ThreadPoolExecutor(max_workers=FSYNC_THREADS, thread_name_prefix="fsync")
    futures = [_FSYNC_POOL.submit(os.fsync, fd) for fd in fds]
    wait(futures)  # every one has finished before the caller closes the descriptors
    for future in futures:
        future.result()  # the first OSError, if any


def _is_timestamp_dir(name: str) -> bool:
    return name.startswith("..") and name not in (DATA_DIR, NEW_DATA_DIR) and name[2:3].isdigit()


class AtomicWriter:
    """Writes whole payloads into `target`; `step` (tests only) is called with each step's name.

    Every operation is relative to a descriptor of `target` opened without
    following a link, and nothing the writer did not create is followed: `..data`
    counts only when it names a timestamped directory inside `target` (one
    relative name, a real directory), and leftovers are removed only when they
    are links or real directories, never through a link. A target another user
    owns, or that others may write, is refused unless `allow_shared` says it is
    shared on purpose (see docs/agent.md).
    """

    def __init__(
        self,
        target: str | Path,
        step: Callable[[str], None] | None = None,
        *,
        dir_mode: int = DIR_MODE,
        allow_shared: bool = False,
    ) -> None:
        self.target = Path(target)
        self._step = step or (lambda name: None)
        self.dir_mode = dir_mode
        self.allow_shared = allow_shared

    # -- the target directory ------------------------------------------------------------

    def open_target(self) -> int:
        """A descriptor of `target` (created with `dir_mode` if missing), after checking who may write it."""
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.mkdir(self.target, self.dir_mode)
                created = True
            except FileExistsError:
                created = False
            fd = os.open(self.target, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and self.target.is_symlink()):
                raise WriteError(f"{self.target} is a symbolic link; refusing to follow it") from None
            raise WriteError(f"cannot use {self.target}: {exc.strerror}") from None
        try:
            if created and os.fstat(fd).st_uid == os.geteuid():
                os.fchmod(fd, self.dir_mode)  # exactly, whatever the umask; through the descriptor, never a path
            check_private(fd, self.target, self.allow_shared)
        except BaseException:
            os.close(fd)
            raise
        return fd

    # -- reading the current generation ---------------------------------------------

    def _current_name(self, fd: int) -> str | None:
        """The timestamped dir `..data` names, if it is one: a single name inside the target, a real directory."""
        try:
            name = os.readlink(DATA_DIR, dir_fd=fd)
        except OSError:
            return None
        if "/" in name or not _is_timestamp_dir(name):
            return None  # not a link this writer made: never followed
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            return None
        return name if stat.S_ISDIR(st.st_mode) else None

    def current_dir(self) -> Path | None:
        try:
            fd = os.open(self.target, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            name = self._current_name(fd)
        finally:
            os.close(fd)
        return None if name is None else self.target / name

    def current(self) -> dict[str, tuple[int, bytes]]:
        """path -> (mode, contents) of the generation `..data` points at (regular files only, no link followed)."""
        try:
            fd = os.open(self.target, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return {}
        try:
            return self._current(fd)
        finally:
            os.close(fd)

    def _current(self, fd: int) -> dict[str, tuple[int, bytes]]:
        name = self._current_name(fd)
        out: dict[str, tuple[int, bytes]] = {}
        if name is None:
            return out
        for root, _dirs, files, root_fd in os.fwalk(name, dir_fd=fd):
            for f in files:
                try:
                    file_fd = os.open(f, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root_fd)
                except OSError:
                    continue  # a link or something unreadable: not part of a generation this writer made
                try:
                    st = os.fstat(file_fd)
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    with os.fdopen(os.dup(file_fd), "rb") as fh:
                        contents = fh.read()
                finally:
                    os.close(file_fd)
                rel = Path(os.path.relpath(os.path.join(root, f), name)).as_posix()
                out[rel] = (stat.S_IMODE(st.st_mode), contents)
        return out

    # -- writing ----------------------------------------------------------------------

    def write(self, payload: Iterable[Payload]) -> bool:
        """Make `target` hold exactly `payload`; returns False when it already did (nothing touched)."""
        files = list(payload)
        seen: set[str] = set()
        for f in files:
            validate_path(f.path)
            if f.path in seen:
                raise WriteError(f"file path {f.path!r} is given twice")
            if not 0 <= f.mode <= 0o777:
                raise WriteError(f"file mode {f.mode:o} of {f.path!r} is not between 0 and 0777")
            seen.add(f.path)
        for f in files:  # a file and a directory of the same name cannot both exist
            parts = f.path.split("/")
            for i in range(1, len(parts)):
                if "/".join(parts[:i]) in seen:
                    raise WriteError(f"file path {f.path!r} is below {'/'.join(parts[:i])!r}, which is a file")
        fd = self.open_target()
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WriteError(f"another process is writing {self.target}") from None
            try:
                return self._write_locked(fd, files)
            except OSError as exc:
                raise WriteError(f"cannot write {self.target}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)

    def _write_locked(self, fd: int, files: list[Payload]) -> bool:
        self._clear_leftovers(fd)
        old = self._current_name(fd)
        wanted = {f.path: (f.mode, f.contents) for f in files}
        if old is not None and self._current(fd) == wanted:
            self._link_visible(fd, files)  # repairs a crash between the swap and the symlinks
            self._remove_stale_links(fd, files)
            return False
        new = self._new_timestamp_dir(fd)
        self._write_dir(fd, new, files)
        self._step("dir-written")
        os.symlink(new, NEW_DATA_DIR, dir_fd=fd)
        self._step("tmp-linked")
        os.rename(NEW_DATA_DIR, DATA_DIR, src_dir_fd=fd, dst_dir_fd=fd)  # replaces a link, never follows one
        os.fsync(fd)
        self._step("swapped")
        self._link_visible(fd, files)
        self._step("linked")
        self._remove_stale_links(fd, files)
        os.fsync(fd)
        self._step("unlinked")
        if old is not None and old != new:
            shutil.rmtree(old, dir_fd=fd, ignore_errors=True)
        return True

    def _new_timestamp_dir(self, fd: int) -> str:
        prefix = ".." + time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime()) + "."
        for _ in range(100):
            name = f"{prefix}{random.getrandbits(32)}"  # Go's MkdirTemp: prefix + random digits
            try:
                os.mkdir(name, self.dir_mode, dir_fd=fd)
            except FileExistsError:
                continue
            sub = _open_dir(name, fd)
            try:
                os.fchmod(sub, self.dir_mode)  # not narrowed by the umask
            finally:
                os.close(sub)
            return name
        raise OSError(errno.EEXIST, "no free timestamped directory name")

    def _write_dir(self, fd: int, base: str, files: list[Payload]) -> None:
        dirs: dict[str, int] = {"": _open_dir(base, fd)}
        try:
            for start in range(0, len(files), FSYNC_BATCH):
                written: list[int] = []
                try:
                    for f in files[start : start + FSYNC_BATCH]:
                        written.append(self._write_file(f, dirs))
                    _fsync_all(written)
                finally:
                    for file_fd in written:
                        os.close(file_fd)
            for rel in sorted(dirs, key=lambda p: p.count("/") + bool(p), reverse=True):  # children before parents
                os.fsync(dirs[rel])
        finally:
            for dir_fd in dirs.values():
                os.close(dir_fd)

    def _parent_fd(self, path: str, dirs: dict[str, int]) -> int:
        """A descriptor of the directory that holds `path` (made, with `dir_mode`, if missing)."""
        parts = path.split("/")[:-1]
        rel = ""
        for part in parts:
            child = f"{rel}/{part}" if rel else part
            if child not in dirs:
                try:
                    os.mkdir(part, self.dir_mode, dir_fd=dirs[rel])
                except FileExistsError:
                    pass
                dirs[child] = _open_dir(part, dirs[rel])
                os.fchmod(dirs[child], self.dir_mode)
            rel = child
        return dirs[rel]

    def _write_file(self, f: Payload, dirs: dict[str, int]) -> int:
        """Write one file (not yet fsynced); returns its open descriptor."""
        parent = self._parent_fd(f.path, dirs)
        name = f.path.rsplit("/", 1)[-1]
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
        try:
            half = len(f.contents) // 2
            os.write(fd, f.contents[:half])
            self._step("mid-file")
            view = memoryview(f.contents)[half:]
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fchmod(fd, f.mode)  # exactly the mode asked for, whatever the umask
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _visible_names(self, files: list[Payload]) -> set[str]:
        return {f.path.split("/", 1)[0] for f in files}

    def _link_visible(self, fd: int, files: list[Payload]) -> None:
        for name in sorted(self._visible_names(files)):
            want = f"{DATA_DIR}/{name}"
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None:
                if not stat.S_ISLNK(st.st_mode):
                    raise WriteError(f"{self.target / name} exists and is not a symlink into {DATA_DIR}; refusing to replace it")
                if os.readlink(name, dir_fd=fd) == want:
                    continue
                os.unlink(name, dir_fd=fd)  # removes the link itself, never what it points at
            os.symlink(want, name, dir_fd=fd)

    def _remove_stale_links(self, fd: int, files: list[Payload]) -> None:
        keep = self._visible_names(files)
        with os.scandir(fd) as entries:
            names = [e.name for e in entries if not e.name.startswith("..") and e.name not in keep and e.is_symlink()]
        for name in names:
            if os.readlink(name, dir_fd=fd).startswith(DATA_DIR + "/"):
                os.unlink(name, dir_fd=fd)  # only our own links; anything else in the directory is left alone

    def _clear_leftovers(self, fd: int) -> None:
        """What a writer killed mid-way leaves: `..data_tmp` and timestamped dirs `..data` does not name."""
        try:
            st = os.stat(NEW_DATA_DIR, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                raise WriteError(f"{self.target / NEW_DATA_DIR} is a directory this writer did not make; remove it")
            os.unlink(NEW_DATA_DIR, dir_fd=fd)
        current = self._current_name(fd)
        with os.scandir(fd) as entries:
            stale = [e.name for e in entries
                     if _is_timestamp_dir(e.name) and e.is_dir(follow_symlinks=False) and e.name != current]
        for name in stale:
            shutil.rmtree(name, dir_fd=fd, ignore_errors=True)


def _open_dir(name: str, dir_fd: int) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


def dir_mode_for(file_mode: int) -> int:
    """The directory mode that lets whoever may read the files list them: 0600 -> 0700, 0644 -> 0755."""
    return 0o700 | ((file_mode & 0o044) >> 2) | (file_mode & 0o044)


def check_private(fd: int, path: Path, allow_shared: bool) -> None:
    """Refuse a directory another user owns or that group/others may write: they could plant links in it.

    `allow_shared`: the user says it is shared on purpose (the writer still follows no link it did not make).
    """
    if allow_shared:
        return
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        raise WriteError(
            f"{path} belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()}); another user could plant links "
            "in it. Use a directory of your own, or pass --allow-shared-target if sharing it is intended"
        )
    if st.st_mode & 0o022:
        raise WriteError(
            f"{path} is writable by {'group and others' if st.st_mode & 0o022 == 0o022 else 'group' if st.st_mode & 0o020 else 'others'} "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); another user could plant links in it. chmod go-w it, or pass "
            "--allow-shared-target if sharing it is intended"
        )


def check_target_path(path: Path) -> None:
    """Refuse a `--target` path that goes through a link another user made (before it is resolved).

    The kernel's protected_symlinks rule, for every component: a link counts only
    if this user or root owns it. Another user could otherwise point the target
    at a directory of this user's and have the mount write into it.
    """
    me = os.geteuid()
    current = Path(path.anchor) if path.is_absolute() else Path.cwd()
    for part in path.parts[1:] if path.is_absolute() else path.parts:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return  # created by the writer from here on
        if stat.S_ISLNK(st.st_mode):
            if st.st_uid not in (me, 0):
                raise WriteError(
                    f"{current} is a symbolic link made by uid {st.st_uid}; refusing to follow it to the target"
                )
            current = Path(os.path.realpath(current))
