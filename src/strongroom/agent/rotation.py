"""Rotation: re-mount when the vault says an object changed, poll as a fallback, back off while the vault is away.

Triggers, any of which starts one re-mount (several arriving during a mount
start exactly one more after it):
- a change-feed event for one of the SecretProviderClass's objects (pushed in
  well under a second by a Strongroom server);
- every (re)connection of the feed, which covers changes made while it was down;
- the poll, every `--rotation-poll-interval` since the last successful mount
  (what the driver's rotation does; the only trigger against Azure Key Vault).

A failed re-mount keeps the files of the last good one. When the vault or the
authority does not answer, the loop retries with exponential backoff and
jitter (0.5 s doubling to 30 s) and says so in the log; once it answers again
the next mount catches up. Other failures (a role revoked, a secret deleted)
are logged and retried at the next poll or event, not in a tight loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from strongroom.agent.backoff import Backoff
from strongroom.agent.feed_client import FeedClient
from strongroom.agent.mounter import Mounter, MountError, Outcome

log = logging.getLogger("strongroom.agent")


class Rotator:
    def __init__(
        self,
        mounter: Mounter,
        poll_interval: float,
        stop: threading.Event,
        on_rotated: Callable[[Outcome], None] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.mounter = mounter
        self.poll_interval = poll_interval
        self.stop = stop
        self.on_rotated = on_rotated
        self.backoff = backoff or Backoff()
        self._wake = threading.Condition()
        self._pending: str | None = None
        self._event_at: float | None = None
        self.feed: FeedClient | None = None

    # -- triggers (any thread) -----------------------------------------------------

    def trigger(self, reason: str) -> None:
        with self._wake:
            if self._pending is None:
                self._pending = reason
            self._wake.notify()

    def on_feed_event(self, event: dict[str, Any]) -> None:
        if self._event_at is None:
            self._event_at = time.monotonic()
        self.trigger(f"{event.get('eventType', 'event')} {event.get('subject', '')}".strip())

    def wake_for_stop(self) -> None:
        with self._wake:
            self._wake.notify_all()

    # -- the loop ------------------------------------------------------------------

    def attach_feed(self, feed: FeedClient) -> None:
        self.feed = feed

    def mount_until_success(
        self, wait: Callable[[float], bool] | None = None, *, retry_permanent: bool = True
    ) -> Outcome | None:
        """The first mount, retried like a pod in ContainerCreating: backoff while the vault is away.

        The agent's one retry loop before the first success (`mount --watch` and `run` both use it).
        A failure that is not retryable (a bad SecretProviderClass, a missing role) is raised at the
        first attempt, so a mistake fails the command at once; after that it is raised again when
        `retry_permanent` is False (`run`), else retried slowly (`mount --watch`: someone may be
        fixing it). `wait(seconds)` sleeps between attempts and returns True to give up (default:
        the `stop` event); giving up returns None.
        """
        wait = wait or self.stop.wait
        attempts = 0
        while not self.stop.is_set():
            try:
                outcome = self.mounter.mount()
                self.backoff.reset()
                return outcome
            except MountError as exc:
                attempts += 1
                if not exc.retryable and (attempts == 1 or not retry_permanent):
                    raise
                delay = self.backoff.next() if exc.retryable else min(self.poll_interval, max(self.backoff.next(), 5.0))
                log.warning("mount failed: %s; retrying in %.1f s", exc.message, delay)
                if wait(delay):
                    return None
        return None

    def run(self) -> None:
        """Re-mount on triggers until `stop` is set. The first mount must have been done already."""
        next_poll = time.monotonic() + self.poll_interval
        retry_at: float | None = None
        failures = 0
        while not self.stop.is_set():
            reason = self._wait(retry_at if retry_at is not None else next_poll)  # while failing, backoff decides
            if self.stop.is_set():
                return
            now = time.monotonic()
            if reason is None:
                reason = "retry" if retry_at is not None and now >= retry_at else "poll"
            event_at, self._event_at = self._event_at, None
            next_poll = time.monotonic() + self.poll_interval  # the poll counts from the latest attempt
            try:
                outcome = self.mounter.mount()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any one failure
                if not isinstance(exc, MountError):
                    log.exception("re-mount failed unexpectedly; keeping the current files")
                    exc = MountError(f"unexpected {type(exc).__name__}", "FailedToRotate", True)
                failures += 1
                if exc.retryable:
                    delay = self.backoff.next()
                    retry_at = time.monotonic() + delay
                    log.warning(
                        "re-mount failed (%s, attempt %d): %s; keeping the current files, retrying in %.1f s",
                        reason, failures, exc.message, delay,
                    )
                else:
                    retry_at = None
                    log.warning(
                        "re-mount failed (%s): %s; keeping the current files, next try at the next change or in %.0f s",
                        reason, exc.message, self.poll_interval,
                    )
                continue
            if failures:
                log.info("re-mount succeeded again after %d failed attempt(s)", failures)
            failures, retry_at = 0, None
            self.backoff.reset()
            if outcome.changed:
                took = f", {1000 * (time.monotonic() - event_at):.0f} ms after the event" if event_at else ""
                log.info("rotated (%s)%s", reason, took)
                if self.on_rotated is not None:
                    self.on_rotated(outcome)

    def _wait(self, deadline: float) -> str | None:
        with self._wake:
            while self._pending is None and not self.stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._wake.wait(remaining)
            reason, self._pending = self._pending, None
            return reason
