"""The agent's subscription to a vault's change feed (Server-Sent Events, see server/events_api.py).

It authenticates as the pod's workload would: the same parameters and the same
credential the provider uses (a fresh service-account token exchanged at the
authority for each connection, the token audience taken from the vault's 401
challenge), and asks only for the objects the SecretProviderClass names
(`?subject=`). It remembers the last event id and sends it as `Last-Event-ID`
when it reconnects, so nothing is missed while it was away; after every
(re)connection it also asks for one re-mount, which covers whatever changed
before the stream was established.

A vault that has no feed (Azure Key Vault itself answers 404 or 400 there)
ends the subscription for good: the rotation loop keeps polling.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from strongroom.agent.backoff import Backoff
from strongroom.csi import cloud, credentials
from strongroom.csi.credentials import Credential
from strongroom.csi.errors import ProviderError
from strongroom.csi.keyvault_client import challenge_from
from strongroom.csi.provider import ProviderConfig
from strongroom.csi.spc import SPCError, parse_parameters
from strongroom.util.sse import EVENTS_PATH, MEDIA_TYPE, READ_TIMEOUT, SEQUENCE_HEADER

log = logging.getLogger("strongroom.agent")


class NoFeed(Exception):
    """The vault offers no change feed; polling is all there is."""


class FeedTarget:
    """Where the feed is and how to authenticate there, from the mount's attributes."""

    def __init__(self, attributes: Mapping[str, str], secrets: Mapping[str, str], config: ProviderConfig, http: httpx.Client) -> None:
        params = parse_parameters(attributes)
        try:
            env = cloud.resolve(params.cloud_name, params.cloud_env_file, config.default_cloud)
        except cloud.CloudError as exc:
            raise SPCError(str(exc)) from None
        self.vault_url = env.vault_url(params.keyvault_name).rstrip("/")
        self.events_url = self.vault_url + EVENTS_PATH
        self.fallback_resource = env.key_vault_endpoint.rstrip("/")
        self.credential: Credential = credentials.for_mount(params, secrets, env, http)


class FeedClient:
    def __init__(
        self,
        target: Callable[[], FeedTarget],
        names: list[str],
        http: httpx.Client,
        on_event: Callable[[dict[str, Any]], None],
        on_connect: Callable[[], None],
        stop: threading.Event,
    ) -> None:
        self.target = target
        self.names = sorted({n for n in names})
        self._watched = {n.lower() for n in names}
        self.http = http
        self.on_event = on_event
        self.on_connect = on_connect
        self.stop = stop
        self.last_id: int | None = None
        self.connected = threading.Event()
        self._scope: str | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FeedClient:
        self._thread = threading.Thread(target=self.run, name="change-feed", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        backoff = Backoff(base=0.25, cap=30.0)
        while not self.stop.is_set():
            try:
                self._session(backoff)
            except NoFeed as exc:
                log.warning("%s; rotation falls back to polling", exc)
                return
            except Exception as exc:  # noqa: BLE001 - any failure: log it, back off, reconnect
                self.connected.clear()
                delay = backoff.next()
                log.warning("change feed unavailable (%s); reconnecting in %.1f s", _describe(exc), delay)
                self.stop.wait(delay)
                continue
            self.connected.clear()
            if not self.stop.is_set():
                self.stop.wait(backoff.next())  # the server ended the stream (token expiry, restart)

    # -- one connection ------------------------------------------------------------

    def _scope_for(self, target: FeedTarget) -> str:
        """Probe once without a token, as the provider's vault client does (csi/keyvault_client.challenge_from)."""
        if self._scope is None:
            with self.http.stream("GET", target.events_url, headers={"Accept": MEDIA_TYPE}) as r:
                if r.status_code in (400, 404, 405):
                    raise NoFeed(f"{target.vault_url} offers no change feed (HTTP {r.status_code} at {EVENTS_PATH})")
                try:
                    self._scope = challenge_from(r, target.vault_url, target.fallback_resource).scope
                except ProviderError as exc:
                    raise NoFeed(exc.message) from None
        return self._scope

    def _session(self, backoff: Backoff) -> None:
        target = self.target()
        scope = self._scope_for(target)
        headers = {"Accept": MEDIA_TYPE, "Authorization": f"Bearer {target.credential.get_token(scope)}"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = str(self.last_id)
        timeout = httpx.Timeout(10.0, read=READ_TIMEOUT)
        params = tuple(("subject", n) for n in self.names)
        with self.http.stream("GET", target.events_url, params=params, headers=headers, timeout=timeout) as r:
            if r.status_code == 401:
                self._scope = None  # the vault may have moved to another resource: ask again
                raise httpx.HTTPStatusError("HTTP 401 from the change feed", request=r.request, response=r)
            if r.status_code in (400, 404, 405):
                raise NoFeed(f"{target.vault_url} offers no change feed (HTTP {r.status_code} at {EVENTS_PATH})")
            if r.status_code != 200:
                raise httpx.HTTPStatusError(f"HTTP {r.status_code} from the change feed", request=r.request, response=r)
            if self.last_id is None and r.headers.get(SEQUENCE_HEADER, "").isdigit():
                self.last_id = int(r.headers[SEQUENCE_HEADER])
            log.info("subscribed to the change feed of %s after event %s", target.vault_url, self.last_id)
            self.connected.set()
            backoff.reset()
            self.on_connect()
            self._read(r)

    def _read(self, response: httpx.Response) -> None:
        """SSE framing: `field: value` lines, a blank line ends a message, `:` starts a comment."""
        data: list[str] = []
        event_id: str | None = None
        for line in response.iter_lines():
            if self.stop.is_set():
                return
            if line == "":
                if event_id is not None and event_id.isdigit():
                    self.last_id = int(event_id)
                if data:
                    self._dispatch("\n".join(data))
                data, event_id = [], None
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "id":
                event_id = value

    def _dispatch(self, text: str) -> None:
        try:
            event = json.loads(text)
        except ValueError:
            log.warning("change feed sent a message that is not JSON; ignored")
            return
        name = str((event.get("data") or {}).get("ObjectName") or event.get("subject") or "")
        if name.lower() in self._watched:
            self.on_event(event)


def _describe(exc: Exception) -> str:
    message = getattr(exc, "message", None)  # ProviderError, MountError: already a sentence
    if isinstance(message, str):
        return message
    if isinstance(exc, httpx.HTTPStatusError):
        return str(exc)
    if isinstance(exc, httpx.HTTPError):
        url = exc.request.url if getattr(exc, "_request", None) is not None else None
        host = f" {urlsplit(str(url)).netloc}" if url else ""
        return f"{type(exc).__name__}{host}: {exc}" if str(exc) else f"{type(exc).__name__}{host}"
    return f"{type(exc).__name__}: {exc}"
