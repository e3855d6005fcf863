"""TLS trust for the provider's outgoing calls (vault, authority, managed identity endpoint)."""

from __future__ import annotations

import os
import ssl
from functools import lru_cache


def http_verify(ca_file: str | None) -> ssl.SSLContext:
    """The system's trust store, plus `ca_file` when given.

    Adding (not replacing) keeps a provider pointed at a private server able to
    reach Azure too, e.g. an authority on the public cloud.

    Loading the system store takes ~20 ms, so one context serves every client of
    the process with the same trust: a CA file that is replaced (other mtime,
    size or inode) or another SSL_CERT_FILE/SSL_CERT_DIR gets a fresh one.
    """
    version = None
    if ca_file:
        try:
            st = os.stat(ca_file)
            version = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            return _context(ca_file, None, None, None)  # not cached: raises as loading it always did
    return _cached_context(ca_file, version, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


def _context(ca_file: str | None, _version: object, _cert_file: str | None, _cert_dir: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


_cached_context = lru_cache(maxsize=8)(_context)
