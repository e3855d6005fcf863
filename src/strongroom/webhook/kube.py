"""Reading a pod's ServiceAccount from the Kubernetes API, with a short-lived cache.

Every labelled pod creation waits on this read, so answers are cached for a few
seconds (upstream reads through controller-runtime's informer cache and, on a miss,
from the API server directly; a miss is never cached here either). Only
`GET /api/v1/namespaces/{ns}/serviceaccounts/{name}` is ever sent: the names come
from the pod, which the API server has not validated yet when it asks a mutating
webhook, so they are checked against Kubernetes' name rules before they go in a URL.

Where the API is: `--kubeconfig` (or $KUBECONFIG), else the in-cluster config (the
pod's service-account token, re-read every minute as client-go does, and its CA),
else ~/.kube/config. Plain HTTPS with httpx; the official client is not needed for one GET.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import yaml

from strongroom.webhook.mutation import Denied

IN_CLUSTER_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
CACHE_TTL = 5.0
CACHE_MAX = 4096
TOKEN_REREAD = 60.0
TIMEOUT = 5.0  # the API server gives the whole review 10 s by default
MAX_RESPONSE = 1024 * 1024
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class ConfigError(Exception):
    """The kubeconfig or in-cluster configuration cannot be used; the message says why."""


@dataclass
class Connection:
    """Where the API server is and how to authenticate to it."""

    server: str
    ssl_context: ssl.SSLContext
    token: str | None = None
    token_file: str | None = None
    _token_read: float = field(default=0.0, repr=False)

    def bearer(self) -> str | None:
        if self.token_file and time.monotonic() - self._token_read > TOKEN_REREAD:
            try:
                self.token = Path(self.token_file).read_text().strip()
                self._token_read = time.monotonic()
            except OSError:
                pass  # keep the last token; the API answers 401 if it has expired
        return self.token


def _load_pem_pair(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """ssl wants files: write the pair to a private temporary directory just long enough to load it."""
    with tempfile.TemporaryDirectory(prefix="strongroom-kube-") as tmp:
        cert_path, key_path = Path(tmp, "client.crt"), Path(tmp, "client.key")
        for path, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(str(cert_path), str(key_path))


def _data_or_file(entry: dict[str, Any], key: str, base: Path) -> bytes | None:
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        path = Path(entry[key])
        return (path if path.is_absolute() else base / path).read_bytes()
    return None


def _named(items: Any, name: str, what: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item.get(what) or {}
    raise ConfigError(f"the kubeconfig has no {what} named {name!r}")


def from_kubeconfig(path: Path) -> Connection:
    """The current context of a kubeconfig: server, CA, and a token, token file or client certificate."""
    try:
        doc = yaml.safe_load(path.read_text())
        base = path.resolve().parent
        if not isinstance(doc, dict):
            raise ConfigError(f"{path} is not a kubeconfig")
        context = _named(doc.get("contexts"), doc.get("current-context") or "", "context")
        cluster = _named(doc.get("clusters"), context.get("cluster") or "", "cluster")
        user = _named(doc.get("users"), context.get("user") or "", "user") if context.get("user") else {}
        server = str(cluster.get("server") or "")
        if not server.startswith("https://"):
            raise ConfigError(f"the cluster's server {server!r} is not an https URL")
        ctx = ssl.create_default_context()
        ca = _data_or_file(cluster, "certificate-authority", base)
        if ca:
            ctx.load_verify_locations(cadata=ca.decode("ascii"))
        if cluster.get("insecure-skip-tls-verify"):
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        cert, key = _data_or_file(user, "client-certificate", base), _data_or_file(user, "client-key", base)
        if cert and key:
            _load_pem_pair(ctx, cert, key)
        token_file = user.get("tokenFile")
        if token_file and not Path(token_file).is_absolute():
            token_file = str(base / token_file)
        return Connection(server.rstrip("/"), ctx, token=user.get("token"), token_file=token_file)
    except (OSError, ValueError, yaml.YAMLError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot use the kubeconfig {path}: {exc}") from None


def in_cluster() -> Connection:
    """The pod's own service account, as rest.InClusterConfig reads it."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("not running in a cluster (KUBERNETES_SERVICE_HOST is not set); pass --kubeconfig")
    if ":" in host:
        host = f"[{host}]"
    try:
        ctx = ssl.create_default_context(cafile=str(IN_CLUSTER_DIR / "ca.crt"))
    except OSError as exc:
        raise ConfigError(f"cannot read the in-cluster CA: {exc}") from None
    conn = Connection(f"https://{host}:{port}", ctx, token_file=str(IN_CLUSTER_DIR / "token"))
    if conn.bearer() is None:
        raise ConfigError(f"cannot read the in-cluster token {IN_CLUSTER_DIR / 'token'}")
    return conn


def connect(kubeconfig: Path | None) -> Connection:
    """--kubeconfig, else in-cluster, else ~/.kube/config (controller-runtime's order, without its flags)."""
    if kubeconfig is not None:
        return from_kubeconfig(kubeconfig)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster()
    home = Path.home() / ".kube" / "config"
    if home.is_file():
        return from_kubeconfig(home)
    raise ConfigError("no Kubernetes API configured: pass --kubeconfig, or run in a cluster")


def _status_message(body: bytes) -> str | None:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    message = doc.get("message") if isinstance(doc, dict) else None
    return message if isinstance(message, str) else None


class ServiceAccounts:
    """`get(namespace, name)` returns the ServiceAccount object (a dict) or raises Denied (400), like upstream."""

    def __init__(self, connection: Connection, ttl: float = CACHE_TTL, timeout: float = TIMEOUT) -> None:
        self._conn = connection
        self._ttl = ttl
        self._client = httpx.AsyncClient(verify=connection.ssl_context, timeout=timeout, follow_redirects=False)
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = {}  # reads under way
        self.api_reads = 0  # reads that went to the API server (for metrics and tests)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        if not DNS_LABEL.fullmatch(namespace):
            raise Denied(f"invalid namespace {namespace[:80]!r}")
        if len(name) > 253 or not DNS_SUBDOMAIN.fullmatch(name):
            raise Denied(f"invalid service account name {name[:80]!r}")
        key = (namespace, name)
        hit = self._cache.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        task = self._inflight.get(key)
        if task is None:  # pods of one rollout arrive together: one read serves them all
            task = asyncio.ensure_future(self._fetch(key))
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._done(key, t))
        # shield: a review whose caller went away does not cancel the read the others wait on
        return await asyncio.shield(task)

    def _done(self, key: tuple[str, str], task: asyncio.Future[dict[str, Any]]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved, even when every waiter has gone

    async def _fetch(self, key: tuple[str, str]) -> dict[str, Any]:
        sa = await self._read(*key)
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + self._ttl, sa)
        return sa

    async def _read(self, namespace: str, name: str) -> dict[str, Any]:
        url = f"{self._conn.server}/api/v1/namespaces/{quote(namespace)}/serviceaccounts/{quote(name)}"
        headers = {"Accept": "application/json"}
        token = self._conn.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.api_reads += 1
        try:
            async with self._client.stream("GET", url, headers=headers) as r:
                body = b""
                async for chunk in r.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE:
                        raise Denied(f"failed to get service account {namespace}/{name}: response too large")
                status = r.status_code
        except httpx.HTTPError as exc:
            raise Denied(f"failed to get service account {namespace}/{name}: {type(exc).__name__}") from None
        if status == 200:
            try:
                sa = orjson.loads(body)
            except orjson.JSONDecodeError:
                sa = None
            if not isinstance(sa, dict) or sa.get("kind") != "ServiceAccount":
                raise Denied(f"failed to get service account {namespace}/{name}: not a ServiceAccount")
            return sa
        message = _status_message(body)
        if status == 404:
            raise Denied(message or f'serviceaccounts "{name}" not found')
        raise Denied(message or f"failed to get service account {namespace}/{name}: HTTP {status}")
