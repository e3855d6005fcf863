"""The real clients of tests/azcli, installed once into a per-user cache and reused.

- `az`: azure-cli (pinned, AZ_VERSION) from PyPI in its own venv, about 700 MB and a
  few minutes to install; the Python SDKs of the main venv are never mixed with it.
- JavaScript: @azure/identity and @azure/keyvault-secrets from the npm registry, exactly
  as `js/package-lock.json` pins them (`npm ci`).

Where: `$STRONGROOM_TOOL_CACHE`, else `$XDG_CACHE_HOME/strongroom`, else `~/.cache/strongroom`;
one directory per version (per lock file for npm), complete only once its `.installed`
stamp exists, so an interrupted install is redone, never half-used. A file lock keeps two
test processes from installing at once. `python -m tests.azcli.tools` installs both ahead
of a test run (CI may cache the directory between runs).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

AZ_VERSION = "2.91.0"
HERE = Path(__file__).resolve().parent
JS_DIR = HERE / "js"
INSTALL_TIMEOUT = 1800


class ToolMissing(RuntimeError):
    """A prerequisite (network to the registry, node/npm) is not there: the message says what to install."""


def cache_root() -> Path:
    explicit = os.environ.get("STRONGROOM_TOOL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "strongroom"


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _run(cmd: list[str], **kwargs) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, **kwargs)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ToolMissing(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{tail}")


def az_venv() -> Path:
    """The venv holding azure-cli AZ_VERSION, installed on first use."""
    venv = cache_root() / f"azure-cli-{AZ_VERSION}"
    stamp = venv / ".installed"
    if stamp.exists():
        return venv
    with _locked(cache_root() / f"azure-cli-{AZ_VERSION}.lock"):
        if stamp.exists():  # another process finished it while we waited
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        started = time.monotonic()
        _run([sys.executable, "-m", "venv", str(venv)])
        _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              f"azure-cli=={AZ_VERSION}"])
        stamp.write_text(f"azure-cli {AZ_VERSION} installed in {time.monotonic() - started:.0f} s\n")
    return venv


def js_modules() -> Path:
    """A directory whose node_modules holds the SDKs of js/package-lock.json, installed on first use."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise ToolMissing(f"`{tool}` is not installed (Node.js 20 or newer with npm: apt-get install nodejs npm)")
    lock = (JS_DIR / "package-lock.json").read_bytes()
    digest = hashlib.sha256(lock + (JS_DIR / "package.json").read_bytes()).hexdigest()[:16]
    target = cache_root() / f"js-{digest}"
    stamp = target / ".installed"
    if stamp.exists():
        return target
    with _locked(cache_root() / f"js-{digest}.lock"):
        if stamp.exists():
            return target
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(JS_DIR / name, target / name)
        started = time.monotonic()
        _run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"], cwd=target)
        stamp.write_text(f"npm ci in {time.monotonic() - started:.0f} s\n")
    return target


if __name__ == "__main__":
    t = time.monotonic()
    print("az:", az_venv(), f"({time.monotonic() - t:.0f} s)")
    t = time.monotonic()
    print("js:", js_modules(), f"({time.monotonic() - t:.0f} s)")
