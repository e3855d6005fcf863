"""`strongroom trust` and `strongroom hosts`: the README's manual /etc/hosts and CA steps as commands.

Nothing here touches this machine's real /etc/hosts or CA store: `hosts` edits a
--hosts-file in a temporary dir; the Debian store runs the real update-ca-certificates
with every one of its directories moved into a temporary dir.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.cli.client import CLIError
from strongroom.cli.hosts import render_block, replace_block
from strongroom.cli.trust import DebianStore, load_ca
from tests.conftest import STRONGROOM, Server

OTHER_ROOT = next(Path("/usr/share/ca-certificates").rglob("*.crt")).read_text() \
    if Path("/usr/share/ca-certificates").is_dir() and any(Path("/usr/share/ca-certificates").rglob("*.crt")) else ""
ORIGINAL_HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n# a comment the user wrote\n"
FETCH = "import ssl, sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], context=ssl.create_default_context()).status)"


def print_env(server: Server) -> dict[str, str]:
    out = server.cli("trust", "--print-env").stdout
    env = {}
    for line in out.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    return env


def test_print_env_lines_make_a_client_trust_the_instance(server: Server) -> None:
    env = print_env(server)
    assert set(env) == {"REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"}
    assert env["NODE_EXTRA_CA_CERTS"] == str(Path(server.ca).resolve())
    bundle = Path(env["SSL_CERT_FILE"]).read_text()
    assert bundle.count("BEGIN CERTIFICATE") > 50  # the public CAs are still trusted, not only ours

    clean = {k: v for k, v in os.environ.items() if k not in env}
    without = subprocess.run([sys.executable, "-c", FETCH, f"{server.url}/healthz"], env=clean, capture_output=True, text=True)
    assert without.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in without.stderr
    with_env = subprocess.run([sys.executable, "-c", FETCH, f"{server.url}/healthz"], env={**clean, **env},
                              capture_output=True, text=True)
    assert with_env.returncode == 0, with_env.stderr
    assert with_env.stdout.strip() == "200"


def test_hosts_prints_apply_is_idempotent_and_remove_restores(server: Server, vault: str, tmp_path: Path) -> None:
    printed = server.cli("hosts").stdout.splitlines()
    assert printed[0] == "# BEGIN strongroom vault.localhost" and printed[-1] == "# END strongroom vault.localhost"
    assert f"127.0.0.1 {vault}.vault.localhost" in printed

    hosts = tmp_path / "hosts"
    hosts.write_text(ORIGINAL_HOSTS)
    hosts.chmod(0o644)
    server.cli("hosts", "--apply", "--hosts-file", str(hosts), "--vault-name", "Later-KV")
    first = hosts.read_text()
    assert first.startswith(ORIGINAL_HOSTS)
    assert f"127.0.0.1 {vault}.vault.localhost\n" in first and "127.0.0.1 later-kv.vault.localhost\n" in first
    assert stat.S_IMODE(hosts.stat().st_mode) == 0o644

    again = server.cli("hosts", "--apply", "--hosts-file", str(hosts), "--vault-name", "later-kv")
    assert hosts.read_text() == first and "already up to date" in again.stderr
    assert first.count("# BEGIN strongroom") == 1

    server.cli("hosts", "--remove", "--hosts-file", str(hosts))
    assert hosts.read_text() == ORIGINAL_HOSTS

    server.cli("hosts", "--apply", "--hosts-file", str(hosts))
    offline = subprocess.run([*STRONGROOM, "hosts", "--remove", "--dns-suffix", "localhost", "--hosts-file", str(hosts),
                              "--server", "https://127.0.0.1:9"], capture_output=True, text=True, timeout=60)
    assert offline.returncode == 0, offline.stderr  # no server needed to take the block out
    assert hosts.read_text() == ORIGINAL_HOSTS
    assert not [p for p in tmp_path.iterdir() if p.name != "hosts"]  # no temporary file left behind


@pytest.mark.parametrize("evil", ["kv1\n6.6.6.6 login.microsoftonline.com", "kv1 evil.example", "kv1#", "-kv"])
def test_a_vault_name_cannot_inject_lines(server: Server, tmp_path: Path, evil: str) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(ORIGINAL_HOSTS)
    proc = server.cli("hosts", "--apply", "--hosts-file", str(hosts), "--vault-name", evil, check=False)
    assert proc.returncode == 1 and "is not a valid host name" in proc.stderr and "Traceback" not in proc.stderr
    assert hosts.read_text() == ORIGINAL_HOSTS


def test_an_address_cannot_inject_lines(server: Server, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(ORIGINAL_HOSTS)
    proc = server.cli("hosts", "--apply", "--hosts-file", str(hosts), "--ip", "127.0.0.1 evil.example", check=False)
    assert proc.returncode == 1 and "is not an IP address" in proc.stderr
    assert hosts.read_text() == ORIGINAL_HOSTS


def test_names_from_the_server_are_checked_too() -> None:
    """What a vault list answers is data: a name with a newline is refused before anything is written."""
    with pytest.raises(CLIError):
        render_block("vault.localhost", "127.0.0.1", ["kv1.vault.localhost\n6.6.6.6 login.microsoftonline.com"])
    with pytest.raises(CLIError):
        render_block("vault.localhost\n6.6.6.6 evil", "127.0.0.1", [])


def test_a_symlinked_hosts_file_is_refused(server: Server, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text(ORIGINAL_HOSTS)
    link = tmp_path / "hosts"
    link.symlink_to(target)
    proc = server.cli("hosts", "--apply", "--hosts-file", str(link), check=False)
    assert proc.returncode == 1 and "is a symlink" in proc.stderr
    assert link.is_symlink() and target.read_text() == ORIGINAL_HOSTS


def test_a_damaged_block_is_left_for_a_human() -> None:
    damaged = ORIGINAL_HOSTS + "# BEGIN strongroom vault.localhost\n127.0.0.1 kv1.vault.localhost\n"
    with pytest.raises(CLIError, match="damaged"):
        replace_block(damaged, "vault.localhost", render_block("vault.localhost", "127.0.0.1", []))


@pytest.mark.skipif(shutil.which("update-ca-certificates") is None or os.geteuid() != 0 or not OTHER_ROOT,
                    reason="needs Debian's update-ca-certificates and root (it runs without sudo only as root)")
def test_debian_store_add_and_remove_with_the_real_update_ca_certificates(server: Server, tmp_path: Path) -> None:
    dirs = {name: tmp_path / name for name in ("share", "local", "etc", "hooks")}
    for d in dirs.values():
        d.mkdir()
    conf = tmp_path / "ca-certificates.conf"
    (dirs["share"] / "other-root.crt").write_text(OTHER_ROOT)  # a store is never empty: another CA stays trusted
    conf.write_text("other-root.crt\n")
    store = DebianStore(ca_dir=dirs["local"], update_args=[
        "--certsconf", str(conf), "--certsdir", str(dirs["share"]), "--localcertsdir", str(dirs["local"]),
        "--etccertsdir", str(dirs["etc"]), "--hooksdir", str(dirs["hooks"]),
    ])
    ca = Path(server.ca)
    cert = load_ca(ca)
    store.add(ca, cert)
    assert store.path_for(cert).read_bytes() == ca.read_bytes()
    assert ca.read_text().strip() in (dirs["etc"] / "ca-certificates.crt").read_text()
    store.add(ca, cert)  # twice: still one copy
    assert (dirs["etc"] / "ca-certificates.crt").read_text().count(ca.read_text().strip()) == 1

    store.remove(cert)
    assert not store.path_for(cert).exists()
    assert ca.read_text().strip() not in (dirs["etc"] / "ca-certificates.crt").read_text()
    assert "nothing to remove" in store.remove(cert)
    assert OTHER_ROOT.strip() in (dirs["etc"] / "ca-certificates.crt").read_text()


def test_trust_refuses_a_file_that_is_not_a_ca(server: Server, tmp_path: Path) -> None:
    leaf = Path(server.state_dir) / "server.pem"
    proc = server.cli("trust", "--ca-file", str(leaf), check=False)
    assert proc.returncode == 1 and "is not a CA certificate" in proc.stderr
