"""`strongroom trust`: make this machine's clients trust the instance's CA (or print the variables that do).

- Debian/Ubuntu: the CA goes to /usr/local/share/ca-certificates/strongroom-<fingerprint>.crt
  and `update-ca-certificates` adds it to /etc/ssl/certs (OpenSSL, curl, Python's ssl, Go, ...).
- macOS: `security add-trusted-cert` into the System keychain.
Both need root: the commands run through sudo when this user is not root.
`--print-env` changes nothing on the system: it prints REQUESTS_CA_BUNDLE / SSL_CERT_FILE
(a bundle of the public CAs plus ours, next to ca.pem) and NODE_EXTRA_CA_CERTS lines.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from strongroom.cli.client import CLIError, state_dir_default
from strongroom.util.cabundle import write_combined_bundle

DEBIAN_CA_DIR = Path("/usr/local/share/ca-certificates")
MACOS_KEYCHAIN = "/Library/Keychains/System.keychain"


def load_ca(path: Path) -> x509.Certificate:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise CLIError(f"no CA at {path}: start the server once (`strongroom up`) or pass --ca-file", "NotFound") from None
    except ValueError:
        raise CLIError(f"{path} is not a PEM certificate", "InvalidArgumentValue") from None
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CLIError(f"{path} is not a CA certificate (basicConstraints CA:TRUE)", "InvalidArgumentValue")
    return cert


def privileged(cmd: list[str]) -> list[str]:
    """`cmd` as root: as is when we are root, else through sudo (which asks for a password when it must)."""
    if os.geteuid() == 0:
        return cmd
    if shutil.which("sudo") is None:
        raise CLIError(f"{cmd[0]} needs root and sudo is not installed; run this as root", "PermissionDenied")
    return ["sudo", *cmd]


def run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise CLIError(f"{shlex.join(cmd)} failed ({proc.returncode}): {detail[-1] if detail else ''}", "CommandFailed")


@dataclass
class DebianStore:
    """/usr/local/share/ca-certificates + update-ca-certificates (its directories can be moved, for tests)."""

    ca_dir: Path = DEBIAN_CA_DIR
    update_args: list[str] = field(default_factory=list)

    def path_for(self, cert: x509.Certificate) -> Path:
        return self.ca_dir / f"strongroom-{cert.fingerprint(hashes.SHA256()).hex()[:16]}.crt"

    def add(self, ca_file: Path, cert: x509.Certificate) -> str:
        dest = self.path_for(cert)
        run(privileged(["install", "-D", "-m", "0644", str(ca_file), str(dest)]))
        run(privileged(["update-ca-certificates", *self.update_args]))
        return f"added {dest} and ran update-ca-certificates"

    def remove(self, cert: x509.Certificate) -> str:
        dest = self.path_for(cert)
        if not dest.exists():
            return f"{dest} is not there: nothing to remove"
        run(privileged(["rm", "-f", "--", str(dest)]))
        run(privileged(["update-ca-certificates", "--fresh", *self.update_args]))  # --fresh drops its link too
        return f"removed {dest} and ran update-ca-certificates"


@dataclass
class MacOSStore:
    keychain: str = MACOS_KEYCHAIN

    def add(self, ca_file: Path, cert: x509.Certificate) -> str:
        run(privileged(["security", "add-trusted-cert", "-d", "-r", "trustRoot", "-k", self.keychain, str(ca_file)]))
        return f"added the CA to {self.keychain} as a trusted root"

    def remove(self, cert: x509.Certificate) -> str:
        sha1 = hashlib.sha1(cert.public_bytes(Encoding.DER)).hexdigest().upper()  # noqa: S324 - how `security` names it
        run(privileged(["security", "delete-certificate", "-Z", sha1, "-t", self.keychain]))
        return f"removed the CA from {self.keychain}"


def system_store() -> DebianStore | MacOSStore:
    if sys.platform == "darwin":
        return MacOSStore()
    if sys.platform.startswith("linux") and shutil.which("update-ca-certificates"):
        return DebianStore()
    raise CLIError(
        "no supported system CA store here (Debian/Ubuntu's update-ca-certificates, or macOS); "
        "use `strongroom trust --print-env` and set the variables it prints",
        "NotSupported",
    )


def env_lines(ca_file: Path, bundle: Path) -> list[str]:
    return [
        f"export REQUESTS_CA_BUNDLE={shlex.quote(str(bundle))}",
        f"export SSL_CERT_FILE={shlex.quote(str(bundle))}",
        f"export NODE_EXTRA_CA_CERTS={shlex.quote(str(ca_file))}",
    ]


def trust(
    print_env: Annotated[bool, typer.Option("--print-env", help=(
        "Print shell lines setting REQUESTS_CA_BUNDLE, SSL_CERT_FILE and NODE_EXTRA_CA_CERTS instead; "
        "changes nothing system-wide."))] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Take the CA out of the system store again.")] = False,
    ca_file: Annotated[Path | None, typer.Option(
        "--ca-file", envvar="STRONGROOM_CA_FILE", help="The CA to trust (default: ca.pem in the state dir).")] = None,
    state_dir: Annotated[Path | None, typer.Option(
        "--state-dir", envvar="STRONGROOM_STATE_DIR", help="State dir holding ca.pem (default ./.strongroom).")] = None,
) -> None:
    """Trust the instance's CA on this machine (system store; sudo when not root), or print the env lines that do."""
    state = state_dir or state_dir_default()
    ca = (ca_file or state / "ca.pem").resolve()
    cert = load_ca(ca)
    if print_env:
        if remove:
            raise CLIError("--print-env and --remove do not go together: unset the variables instead", "InvalidArgumentValue")
        bundle = write_combined_bundle(ca, ca.parent / "ca-bundle.pem")
        sys.stdout.write("\n".join(env_lines(ca, bundle)) + "\n")
        return
    store = system_store()
    message = store.remove(cert) if remove else store.add(ca, cert)
    print(message, file=sys.stderr)
