"""TLS trust for the provider's outgoing calls (vault, authority, managed identity endpoint)."""

from __future__ import annotations

import ssl


def http_verify(ca_file: str | None) -> ssl.SSLContext:
    """The system's trust store, plus `ca_file` when given.

    Adding (not replacing) keeps a provider pointed at a private server able to
    reach Azure too, e.g. an authority on the public cloud.
    """
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context
