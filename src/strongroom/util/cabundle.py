"""A CA bundle that trusts the usual public CAs plus one more (an instance's CA).

REQUESTS_CA_BUNDLE and SSL_CERT_FILE replace a client's whole trust list, so they
must point at the public CAs and ours, not at ours alone.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from strongroom.util.files import write_file_atomically


def public_ca_bundle() -> str | None:
    """The CA file clients use by default: certifi's when installed (requests uses it), else OpenSSL's."""
    try:
        import certifi

        return certifi.where()
    except ImportError:
        return ssl.get_default_verify_paths().cafile


def write_combined_bundle(ca_file: Path, out: Path) -> Path:
    """`out` = the public CAs + the CA in `ca_file` (written atomically, world-readable: CAs are public)."""
    parts = []
    public = public_ca_bundle()
    if public and Path(public).is_file():
        parts.append(Path(public).read_text())
    parts.append(ca_file.read_text())
    write_file_atomically(out, ("\n".join(p.rstrip("\n") for p in parts) + "\n").encode(), mode=0o644)
    return out
