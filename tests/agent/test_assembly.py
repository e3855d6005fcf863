"""The assembled agent in-process, without a server process (agent/assembly.py, local_cluster.py, rotation.py).

Real parts throughout: the real SecretProviderClass loader, FileTokens reading a real
token file, the real in-process provider, the real atomic writer's checks. Where a
server would be needed the test points the agent at a closed port on 127.0.0.1, so
the failures are real connection failures. Over-the-wire behaviour (a real server,
the command as a process) stays in test_mount.py, test_run.py and test_faults.py.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import jwt
import pytest

from strongroom.agent.assembly import AgentError, AgentOptions, assemble, provider_config
from strongroom.agent.feed_client import FeedClient, NoFeed
from strongroom.agent.local_cluster import ClusterTokens
from strongroom.agent.mounter import MountError
from strongroom.agent.rotation import Rotator
from strongroom.agent.tokens import FileTokens, TokenRequestError
from strongroom.csi.errors import ProviderError
from strongroom.csi.keyvault_client import challenge_from
from strongroom.util import sse

NAMESPACE, SA = "default", "workload-sa"


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def spc_file(tmp_path: Path, *, namespace: str = NAMESPACE, provider: str = "azure",
             objects: str | None = None) -> Path:
    objects = objects if objects is not None else (
        "array:\n        - |\n          objectName: db-password\n          objectType: secret\n")
    path = tmp_path / "spc.yaml"
    path.write_text(f"""apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: azure-kvname-wi
  namespace: {namespace}
spec:
  provider: {provider}
  parameters:
    usePodIdentity: "false"
    clientID: "00000000-0000-0000-0000-000000000001"
    keyvaultName: "kv1"
    tenantId: "00000000-0000-0000-0000-000000000002"
    objects: |
      {objects}
""")
    return path


def token_file(tmp_path: Path, subject: str = f"system:serviceaccount:{NAMESPACE}:{SA}", ttl: int = 3600) -> Path:
    """A service-account JWT as kubelet projects one (FileTokens reads the claims, the exchange verifies it)."""
    claims = {"sub": subject, "aud": ["api://AzureADTokenExchange"], "exp": int(time.time()) + ttl, "iss": "https://x"}
    path = tmp_path / "token"
    path.write_text(jwt.encode(claims, "k" * 32, algorithm="HS256"))
    return path


def options(tmp_path: Path, **overrides) -> AgentOptions:
    """Everything given by flag, so no server is asked: the least-privilege `--token-file` set-up."""
    port = closed_port()
    values = dict(
        spc=spc_file(tmp_path), namespace=NAMESPACE, service_account=SA, pod_name="pod-1", provider_socket=None,
        vault_dns_suffix=f"vault.localhost:{port}", authority_host=f"https://localhost:{port}", ca_file=None,
        state_dir=tmp_path / "no-state", server=None, poll_interval=120.0, token_file=token_file(tmp_path),
    )
    values.update(overrides)
    return AgentOptions(**values)


# -- assembly: what is refused before anything is written ---------------------------------


def test_assemble_with_flags_and_token_file_needs_no_server(tmp_path):
    opts = options(tmp_path)
    agent = assemble(opts, tmp_path / "mnt")
    try:
        assert isinstance(agent.mounter.tokens, FileTokens)
        assert agent.config.vault_dns_suffix == opts.vault_dns_suffix
        assert agent.config.authority_host == opts.authority_host
        assert agent.mounter.config.permission == 0o600
        assert not (tmp_path / "mnt").exists() or not any((tmp_path / "mnt").iterdir())  # nothing written yet
    finally:
        agent.mounter.provider.close()


@pytest.mark.parametrize(
    ("change", "code", "says"),
    [
        (dict(namespace="other"), "SecretProviderClassNotFound", "is in namespace default, not other"),
        ("provider", "FailedToLookupProviderGRPCClient", "is for provider 'vault'"),
        ("objects", "InvalidSecretProviderClass", "objects"),
        ("file_mode", "InvalidArgumentValue", "--file-mode 0200 would leave the files unreadable"),
        ("ca_file", "InvalidArgumentValue", "no such file"),
    ],
)
def test_assemble_refuses_mistakes_with_the_driver_error_type(tmp_path, change, code, says):
    kwargs, opts = {}, options(tmp_path)
    if change == "provider":
        opts.spc = spc_file(tmp_path, provider="vault")
    elif change == "objects":
        opts.spc = spc_file(tmp_path, objects="array: [not: a: list")
    elif change == "file_mode":
        kwargs["file_mode"] = "0200"
    elif change == "ca_file":
        opts.ca_file = tmp_path / "missing-ca.pem"
    else:
        opts.namespace = change["namespace"]
    with pytest.raises(AgentError) as err:
        assemble(opts, tmp_path / "mnt", **kwargs)
    assert err.value.code == code
    assert says in err.value.message
    assert not (tmp_path / "mnt" / "db-password").exists()


def test_provider_config_without_flags_or_server_says_which_flags_avoid_asking(tmp_path):
    opts = options(tmp_path, vault_dns_suffix=None, authority_host=None)
    with pytest.raises(AgentError) as err:
        provider_config(opts)
    assert err.value.code == "NoServer"
    assert "admin.json does not exist" in err.value.message
    assert "pass --vault-dns-suffix and --authority-host" in err.value.message


# -- the token source: the local cluster's TokenRequest API --------------------------------


def test_cluster_tokens_unreachable_server_is_retryable(tmp_path, monkeypatch):
    for name, value in (("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "node-agent"), ("AZURE_CLIENT_SECRET", "s")):
        monkeypatch.setenv(name, value)  # a "Strongroom Node Agent" principal's credentials
    tokens = ClusterTokens(tmp_path, f"https://127.0.0.1:{closed_port()}")
    with pytest.raises(TokenRequestError) as err:
        tokens.token(NAMESPACE, SA, "api://AzureADTokenExchange", "pod-1")
    assert err.value.retryable
    assert "cannot reach" in err.value.message


def test_cluster_tokens_without_server_is_a_mistake_to_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("STRONGROOM_SERVER", raising=False)
    tokens = ClusterTokens(tmp_path, None)
    with pytest.raises(TokenRequestError) as err:
        tokens.token(NAMESPACE, SA, "api://AzureADTokenExchange", "pod-1")
    assert not err.value.retryable
    assert "strongroom up" in err.value.message


# -- the one first-mount retry loop ----------------------------------------------------------


class Waits:
    """The loop's sleep, recorded; `then` runs before each return (e.g. fixing or breaking the token file)."""

    def __init__(self, stop_after: int, then=None) -> None:
        self.delays: list[float] = []
        self.stop_after = stop_after
        self.then = then

    def __call__(self, seconds: float) -> bool:
        self.delays.append(seconds)
        if self.then is not None:
            self.then(len(self.delays))
        return len(self.delays) >= self.stop_after


def test_first_mount_refuses_a_mistake_at_once(tmp_path):
    opts = options(tmp_path)
    token_file(tmp_path, subject="system:serviceaccount:default:someone-else")
    agent = assemble(opts, tmp_path / "mnt")
    waits = Waits(stop_after=99)
    with pytest.raises(MountError) as err:
        Rotator(agent.mounter, 120.0, threading.Event()).mount_until_success(waits)
    assert not err.value.retryable and "someone-else" in err.value.message
    assert waits.delays == []  # no retry of a mistake
    agent.mounter.provider.close()


def test_first_mount_backs_off_while_the_vault_is_away_and_gives_up_when_told(tmp_path):
    agent = assemble(options(tmp_path), tmp_path / "mnt")  # the authority is a closed port: UNAVAILABLE
    waits = Waits(stop_after=4)
    assert Rotator(agent.mounter, 120.0, threading.Event()).mount_until_success(waits) is None
    assert len(waits.delays) == 4
    assert all(0.25 <= d <= 30.0 for d in waits.delays)
    assert waits.delays[3] > waits.delays[0]  # it backs off
    assert not (tmp_path / "mnt" / "db-password").exists()
    agent.mounter.provider.close()


@pytest.mark.parametrize("retry_permanent", [False, True])
def test_first_mount_after_a_retry_a_mistake_stops_run_but_not_watch(tmp_path, retry_permanent):
    agent = assemble(options(tmp_path), tmp_path / "mnt")
    wrong = lambda n: n == 1 and token_file(tmp_path, subject="system:serviceaccount:default:wrong")  # noqa: E731
    waits = Waits(stop_after=3, then=wrong)
    rotator = Rotator(agent.mounter, 7.0, threading.Event())
    if retry_permanent:  # `mount --watch`: someone may be fixing it; retried slowly (at least 5 s, at most the poll)
        assert rotator.mount_until_success(waits, retry_permanent=True) is None
        assert len(waits.delays) == 3 and all(5.0 <= d <= 7.0 for d in waits.delays[1:])
    else:  # `run`: the command fails with the mistake
        with pytest.raises(MountError) as err:
            rotator.mount_until_success(waits, retry_permanent=False)
        assert not err.value.retryable and len(waits.delays) == 1
    agent.mounter.provider.close()


def test_first_mount_stops_when_the_stop_event_is_set(tmp_path):
    agent = assemble(options(tmp_path), tmp_path / "mnt")
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    assert Rotator(agent.mounter, 120.0, stop).mount_until_success() is None  # default wait: the stop event
    assert time.monotonic() - started < 10
    agent.mounter.provider.close()


# -- the one challenge probe (vault client and change feed) --------------------------------


def _unauthorized(header: str | None) -> httpx.Response:
    return httpx.Response(401, headers={"WWW-Authenticate": header} if header else {})


def test_challenge_probe_follows_the_vaults_resource_and_refuses_a_foreign_one():
    vault = "https://kv1.vault.localhost:8443"
    ok = challenge_from(_unauthorized('Bearer authorization="https://localhost:8443/t", resource="https://vault.localhost:8443"'),
                        vault, "https://vault.azure.net")
    assert ok.scope == "https://vault.localhost:8443/.default"
    fallback = challenge_from(_unauthorized(None), vault, "https://vault.azure.net/")
    assert fallback.scope == "https://vault.azure.net/.default"
    with pytest.raises(ProviderError) as err:
        challenge_from(_unauthorized('Bearer authorization="x", resource="https://evil.example"'), vault, "https://v")
    assert "refusing to send a token there" in err.value.message


def test_feed_probe_uses_the_same_rule_and_gives_up_on_a_foreign_resource():
    """The feed's probe on a vault that points its challenge elsewhere: no token is fetched, polling stays."""

    def vault(request: httpx.Request) -> httpx.Response:  # a vault's unauthenticated answer, as Key Vault sends it
        assert "authorization" not in request.headers
        return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer authorization="x", resource="https://evil.example"'})

    http = httpx.Client(transport=httpx.MockTransport(vault))

    class Target:
        vault_url = "https://kv1.vault.localhost:8443"
        events_url = vault_url + sse.EVENTS_PATH
        fallback_resource = "https://vault.localhost:8443"

    feed = FeedClient(lambda: Target(), ["db-password"], http, lambda e: None, lambda: None, threading.Event())
    with pytest.raises(NoFeed) as err:
        feed._scope_for(Target())
    assert "refusing to send a token there" in str(err.value)


def test_sse_contract_is_one_copy():
    """The change feed's path and position header are spelled once (util/sse.py), for the server and the agent."""
    src = Path(sse.__file__).resolve().parents[1]
    spelled = sorted(
        str(p.relative_to(src)) for p in src.rglob("*.py")
        if any(lit in p.read_text().lower() for lit in ('"/strongroom/events"', '"strongroom-event-sequence"'))
    )
    assert spelled == ["util/sse.py"]
