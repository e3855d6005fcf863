"""A server certificate that follows its files: cert-manager or a rotated Secret replaces them in place.

The listening socket keeps one SSLContext whose SNI callback (called on every
handshake, with or without a server name) hands the handshake the context built from
the files as they are now. The files are looked at (a stat of each) at most once a
second; a change is loaded into a new context, and a pair that does not load (a Secret
update half-way, a key that does not match) keeps the previous certificate in service.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time

log = logging.getLogger("strongroom.webhook")
CHECK_INTERVAL = 1.0


def _context(cert_file: str, key_file: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def _stamp(*paths: str) -> tuple:
    """What changes when a file is rewritten or a Secret volume's symlink is swapped."""
    out = []
    for p in paths:
        st = os.stat(p)
        out.append((st.st_ino, st.st_mtime_ns, st.st_size, os.path.realpath(p)))
    return tuple(out)


class ReloadingCertificate:
    """`listener` goes on the socket; every handshake gets the context of the files' current contents."""

    def __init__(self, cert_file: str, key_file: str) -> None:
        self.cert_file, self.key_file = cert_file, key_file
        self._stamp = _stamp(cert_file, key_file)
        self._current = _context(cert_file, key_file)  # fails loudly at start: no certificate, no server
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self.reloads = 0
        self.listener = _context(cert_file, key_file)
        self.listener.sni_callback = self._on_handshake

    def current(self) -> ssl.SSLContext:
        now = time.monotonic()
        if now - self._checked >= CHECK_INTERVAL and self._lock.acquire(blocking=False):
            try:
                self._checked = now
                self._maybe_reload()
            finally:
                self._lock.release()
        return self._current

    def _maybe_reload(self) -> None:
        try:
            stamp = _stamp(self.cert_file, self.key_file)
            if stamp == self._stamp:
                return
            ctx = _context(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            log.warning("webhook certificate not reloaded, the previous one stays in use: %s", exc)
            return
        self._current, self._stamp = ctx, stamp
        self.reloads += 1
        log.info("webhook certificate reloaded from %s", self.cert_file)

    def _on_handshake(self, sslobj: ssl.SSLObject, server_name: str | None, ctx: ssl.SSLContext) -> None:
        sslobj.context = self.current()
