"""Practice 4: no secrets in Git (SR401 Secret manifests with data, SR402 secret-like strings).

SR402 runs detect-secrets' detectors (its entropy plugins and its known-credential patterns)
on each string value of each document; a finding names the detector, never the value.
The live-value check (SR403) needs the vault and lives in `server_checks`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from strongroom.lint.findings import Finding
from strongroom.lint.graph import Graph
from strongroom.lint.manifests import Doc
from strongroom.lint.rules import Options

MIN_LENGTH = 8
# Fields that hold identifiers, not secrets (client ids and tenant ids are GUIDs; hashes pin images).
SAFE_KEYS = {
    "apiVersion", "kind", "clientID", "tenantID", "tenantId", "keyvaultName", "objectVersion", "image",
    "azure.workload.identity/client-id", "azure.workload.identity/tenant-id", "userAssignedIdentityID",
    "uid", "resourceVersion", "checksum/config",
}
# detect-secrets plugins that find addresses rather than credentials
NOISY_PLUGINS = {"IPPublicDetector"}


@lru_cache(maxsize=1)
def _detectors() -> tuple[list[Any], list[Any]]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin

    by_type: dict[str, Any] = get_mapping_from_secret_type_to_class()
    classes = [c for c in by_type.values() if c.__name__ not in NOISY_PLUGINS]
    regex = [c() for c in classes if issubclass(c, RegexBasedDetector)]
    entropy = [c() for c in classes if issubclass(c, HighEntropyStringsPlugin)]
    return regex, entropy


@lru_cache(maxsize=65536)
def secret_kind(value: str) -> str | None:
    """The detect-secrets secret type `value` looks like, or None."""
    from detect_secrets.filters.heuristic import is_potential_uuid, is_templated_secret

    if len(value) < MIN_LENGTH or "{{" in value or is_potential_uuid(value) or is_templated_secret(value):
        return None
    regex, entropy = _detectors()
    for p in regex:
        for _ in p.analyze_string(value):
            return p.secret_type
    if "\n" in value or " " in value:
        return None  # prose and scripts: entropy detectors only judge single tokens
    for p in entropy:
        if p.analyze_line(filename="manifest", line=f'"{value}"'):
            return p.secret_type
    return None


def _in_secret_data(doc: Doc, path: tuple) -> bool:
    return doc.kind == "Secret" and len(path) >= 1 and path[0] in ("data", "stringData")


def check(g: Graph, options: Options) -> list[Finding]:
    out: list[Finding] = []
    for d in g.secrets:
        for field in ("data", "stringData"):
            if d.data.get(field):
                keys = ", ".join(sorted(str(k) for k in d.data[field])) if isinstance(d.data[field], dict) else ""
                out.append(Finding("SR401", d.file, d.line((field,)),
                                   f"{d.describe()} carries {field} ({keys}) in Git: store the value(s) in the vault "
                                   "(`strongroom keyvault secret set`) and mount them through a SecretProviderClass "
                                   "(with secretObjects if a Kubernetes Secret is really needed).",
                                   subject=f"{d.describe()}#{field}"))
    return out


def check_strings(raw_docs: list[Doc]) -> list[Finding]:
    out: list[Finding] = []
    for d in raw_docs:
        if d.rendered:
            continue
        for value, line, path in d.strings:
            if not path or (isinstance(path[-1], str) and path[-1] in SAFE_KEYS) or _in_secret_data(d, path):
                continue
            kind = secret_kind(value)
            if kind is None:
                continue
            where = ".".join(str(p) for p in path)
            out.append(Finding("SR402", d.file, line,
                               f"{d.describe() if d.kind else 'document'} field {where} holds a value that looks "
                               f"like a secret ({kind}): move it into the vault and reference it through a "
                               "SecretProviderClass; rotate it, since it is in Git history.",
                               subject=f"{d.describe()}#{where}"))
    return out
