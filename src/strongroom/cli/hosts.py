"""`strongroom hosts`: the /etc/hosts lines that make the instance's vault names resolve.

Without `--apply` it prints them. With `--apply` it keeps them in one marked block
of the hosts file (`# BEGIN strongroom vault.<suffix>` ... `# END ...`): the block is
replaced, never duplicated, and the file is replaced atomically (a reader sees the
old file or the new one) with its mode and owner kept. A symlinked hosts file is
refused rather than written through or replaced. Every name and address is checked
before it is written, so nothing the server returns can add a line of its own.
When the file is not writable and we are not root, the write runs through sudo
(`python -m strongroom.cli.hosts`, which checks its input again).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from strongroom.cli.client import CLIError
from strongroom.cli.common import ServerOpt, StateDirOpt, client

HOSTS_FILE = Path("/etc/hosts")
MAX_HOSTS_FILE = 4 * 1024 * 1024  # a hosts file is small; refuse to load anything much bigger
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


def check_hostname(name: str) -> str:
    if not _HOSTNAME.match(name):
        raise CLIError(f"'{name}' is not a valid host name", "InvalidArgumentValue")
    return name


def check_address(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise CLIError(f"'{address}' is not an IP address", "InvalidArgumentValue") from None


def markers(domain: str) -> tuple[str, str]:
    check_hostname(domain)
    return f"# BEGIN strongroom {domain}", f"# END strongroom {domain}"


def render_block(domain: str, address: str, hosts: list[str]) -> list[str]:
    begin, end = markers(domain)
    address = check_address(address)
    return [begin, *(f"{address} {check_hostname(h)}" for h in hosts), end]


def replace_block(text: str, domain: str, block: list[str] | None) -> str:
    """`text` with the block for `domain` replaced by `block` (appended if absent; removed if `block` is None)."""
    begin, end = markers(domain)
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == begin]
    ends = [i for i, line in enumerate(lines) if line.strip() == end]
    if len(starts) > 1 or len(ends) > 1 or len(starts) != len(ends) or (starts and ends[0] < starts[0]):
        raise CLIError(f"the hosts file has a damaged '{begin}' block: fix it by hand first", "Conflict")
    if starts:
        lines[starts[0]:ends[0] + 1] = block or []
    elif block:
        lines += block
    return "".join(line + "\n" for line in lines)


def read_hosts(path: Path) -> tuple[str, os.stat_result]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        if path.is_symlink():
            raise CLIError(f"{path} is a symlink (to {os.readlink(path)}): edit the target or pass it as --hosts-file",
                           "Conflict") from None
        raise CLIError(f"cannot read {path}: {exc.strerror}", "FileError") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise CLIError(f"{path} is not a regular file", "Conflict")
        data = f.read(MAX_HOSTS_FILE + 1)
    if len(data) > MAX_HOSTS_FILE:
        raise CLIError(f"{path} is larger than {MAX_HOSTS_FILE} bytes; not touching it", "Conflict")
    return data.decode("utf-8", "surrogateescape"), st


def write_hosts(path: Path, text: str, st: os.stat_result) -> None:
    """Replace `path` atomically, keeping its mode and (as root) its owner."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.strongroom.")
    try:
        os.fchmod(fd, stat.S_IMODE(st.st_mode))
        if os.geteuid() == 0:
            os.fchown(fd, st.st_uid, st.st_gid)
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8", "surrogateescape"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # rename never follows a symlink planted meanwhile: it replaces the link itself
    except OSError as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise CLIError(f"cannot replace {path}: {exc.strerror} (add the lines printed by `strongroom hosts` by hand)",
                       "FileError") from None


def apply(path: Path, domain: str, block: list[str] | None) -> bool:
    """Put `block` into the hosts file (None: take it out); False when the file already says that."""
    text, st = read_hosts(path)
    new = replace_block(text, domain, block)
    if new == text:
        return False
    write_hosts(path, new, st)
    return True


def apply_privileged(path: Path, domain: str, address: str, hosts: list[str], remove: bool) -> bool:
    """`apply`, through sudo when this user may not replace the file."""
    if os.geteuid() == 0 or os.access(path.parent, os.W_OK):
        return apply(path, domain, None if remove else render_block(domain, address, hosts))
    request = json.dumps({"path": str(path), "domain": domain, "address": address, "hosts": hosts, "remove": remove})
    proc = subprocess.run(["sudo", sys.executable, "-m", "strongroom.cli.hosts"], input=request, text=True,
                          capture_output=True)
    if proc.returncode not in (0, 3):
        raise CLIError((proc.stderr.strip() or f"sudo failed ({proc.returncode})").splitlines()[-1], "PermissionDenied")
    return proc.returncode == 0


def vault_hosts(state_dir: Path | None, server: str | None) -> tuple[str, str, list[str]]:
    """(vault domain, server address, vault host names) of the instance."""
    c = client(state_dir, server)
    template = urlsplit(c.metadata()["vaultUrlTemplate"]).hostname or ""
    domain = template.split(".", 1)[1] if "." in template else template
    vaults = c.arm("GET", f"/subscriptions/{c.subscription_id}/providers/Microsoft.KeyVault/vaults")["value"]
    host = urlsplit(c.server).hostname or "127.0.0.1"
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        address = socket.gethostbyname(host)
    return domain, address, [f"{v['name'].lower()}.{domain}" for v in vaults]


def hosts(
    apply_: Annotated[bool, typer.Option("--apply", help="Write the lines into the hosts file (sudo when needed).")] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Take Strongroom's lines out of the hosts file again.")] = False,
    vault_name: Annotated[
        list[str] | None, typer.Option("--vault-name", help="Also this vault (e.g. one not created yet); repeatable.")
    ] = None,
    address: Annotated[str | None, typer.Option("--ip", help="Address the names resolve to (default: the server's).")] = None,
    hosts_file: Annotated[Path, typer.Option("--hosts-file", help="The hosts file to edit.")] = HOSTS_FILE,
    dns_suffix: Annotated[str | None, typer.Option(
        "--dns-suffix", help="With --remove: the instance's DNS suffix, so the server need not be running."
    )] = None,
    state_dir: StateDirOpt = None,
    server: ServerOpt = None,
) -> None:
    """Print (or --apply) the /etc/hosts lines for the instance's vaults: <name>.vault.<suffix> -> the server."""
    if remove and dns_suffix:
        domain = f"vault.{check_hostname(dns_suffix.lower().strip('.'))}"
        changed = apply_privileged(hosts_file, domain, "127.0.0.1", [], remove=True)
        print(f"removed the block from {hosts_file}" if changed else f"{hosts_file} already up to date", file=sys.stderr)
        return
    domain, default_address, names = vault_hosts(state_dir, server)
    names += [f"{n.lower()}.{domain}" for n in vault_name or [] if f"{n.lower()}.{domain}" not in names]
    block = render_block(domain, address or default_address, sorted(names))
    if not (apply_ or remove):
        sys.stdout.write("\n".join(block) + "\n")
        return
    changed = apply_privileged(hosts_file, domain, address or default_address, sorted(names), remove)
    what = "removed the block from" if remove else f"{len(names)} vault name(s) in"
    print(f"{what} {hosts_file}" if changed else f"{hosts_file} already up to date", file=sys.stderr)


def main() -> None:
    """The privileged half (`sudo python -m strongroom.cli.hosts`): one JSON request on stdin, checked again."""
    try:
        req = json.loads(sys.stdin.read(65536))
        hosts_list = req["hosts"]
        if not isinstance(hosts_list, list) or not all(isinstance(h, str) for h in hosts_list):
            raise CLIError("hosts must be a list of names", "InvalidArgumentValue")
        block = None if req["remove"] else render_block(req["domain"], req["address"], hosts_list)
        changed = apply(Path(req["path"]), req["domain"], block)
    except CLIError as exc:
        print(f"ERROR: {exc.message}", file=sys.stderr)
        sys.exit(1)
    except (ValueError, KeyError, TypeError) as exc:
        print(f"ERROR: bad request: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0 if changed else 3)


if __name__ == "__main__":
    main()
