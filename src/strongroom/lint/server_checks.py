"""Checks that need the live system: least privilege (SR201-SR203) and live values in Git (SR403).

The linter does not import the CLI: `cli/lint.py` hands in its `Client` (anything with the
`Backend` methods below) and, when the audit log is readable, a `last_used` lookup.
Findings point at the SecretProviderClass line that names the identity or at the string,
and carry the exact `strongroom role assignment …` commands that fix them.
"""

from __future__ import annotations

import re
import secrets as pysecrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from strongroom.keyvault import value_match
from strongroom.lint.findings import Finding
from strongroom.lint.graph import Graph, spc_objects, spc_parameters
from strongroom.lint.manifests import Doc
from strongroom.lint.rules import Options

AUTHZ = "providers/Microsoft.Authorization"
ROLE_API = "2022-04-01"
# The least role that lets the Azure provider fetch each objectType, and where it is scoped.
READ_ROLE_FOR = {
    "secret": ("Key Vault Secrets User", "secrets"),
    "cert": ("Key Vault Certificate User", "certificates"),
    "key": ("Key Vault Reader", "keys"),
}
# Data actions that only read. Anything else (or a wildcard) is more than a reader needs.
READ_DATA_ACTIONS = {
    "microsoft.keyvault/vaults/secrets/getsecret/action",
    "microsoft.keyvault/vaults/secrets/readmetadata/action",
    "microsoft.keyvault/vaults/keys/read",
    "microsoft.keyvault/vaults/certificates/read",
}
MATCH_PATH = "/strongroom/lint/value-matches"
# What the files may name. A repository under review is untrusted: its strings end up in request
# paths, Host headers and in fix commands a user may paste into a shell, so only Azure's shapes pass.
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
VAULT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]\Z")
OBJECT_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}\Z")


class Backend(Protocol):
    @property
    def subscription_id(self) -> str: ...

    def arm(self, method: str, path: str, **kwargs: Any) -> Any: ...
    def vault(self, vault_name: str, method: str, path: str, **kwargs: Any) -> Any: ...
    def vault_pages(self, vault_name: str, path: str, params: dict[str, Any] | None = None) -> list[Any]: ...


class Refused(Exception):
    """The caller may not read what a check needs (role assignments, definitions): a note, not a finding."""


REFUSALS = {"AuthorizationFailed", "Forbidden", "ForbiddenByRbac", "InsufficientPermissions"}


def _refused(exc: Exception) -> bool:
    return getattr(exc, "code", None) in REFUSALS


@dataclass
class Reading:
    """What the SPCs naming one identity read from one vault."""

    client_id: str
    vault: str
    spc: Doc  # the first SPC (where findings point)
    objects: dict[str, str] = field(default_factory=dict)  # objectName -> objectType

    def secrets(self) -> set[str]:
        return {n.lower() for n, t in self.objects.items() if t == "secret"}

    def fix_commands(self, vault_id: str) -> list[str]:
        out = []
        for name, kind in sorted(self.objects.items()):
            role, collection = READ_ROLE_FOR.get(kind, READ_ROLE_FOR["secret"])
            out.append(f"strongroom role assignment create --role \"{role}\" --assignee {self.client_id} "
                       f"--scope {vault_id}/{collection}/{name}")
        return out


def readings(g: Graph) -> list[Reading]:
    out: dict[tuple[str, str], Reading] = {}
    for spc in g.spcs:
        params = spc_parameters(spc)
        client_id, vault = str(params.get("clientID") or ""), str(params.get("keyvaultName") or "")
        if not GUID.match(client_id) or not VAULT_NAME.match(vault):
            continue
        key = (client_id.lower(), vault.lower())
        r = out.setdefault(key, Reading(client_id, vault.lower(), spc))
        r.objects.update({n: t for n, t in spc_objects(spc) if OBJECT_NAME.match(n)})
    return list(out.values())


def _covers(scope: str, resource: str) -> bool:
    s, r = scope.lower().rstrip("/"), resource.lower().rstrip("/")
    return r == s or r.startswith(s + "/")


def _is_read(action: str) -> bool:
    a = action.lower()
    return a in READ_DATA_ACTIONS or a.endswith("/read")


def _reaches_vaults(action: str) -> bool:
    """Could this control-plane pattern grant something on vaults or on role assignments (escalation)?"""
    a = action.lower()
    return a in ("*", "microsoft.*") or a.startswith(("microsoft.keyvault/", "microsoft.authorization/"))


def _exceeds_read(definition: dict) -> list[str]:
    """The role's actions beyond reading: data actions, and control-plane actions on vaults or role assignments.

    Generic control-plane extras of the built-in readers (deployments, support tickets) do not count.
    """
    extra: list[str] = []
    for perm in definition.get("properties", {}).get("permissions", []):
        extra += [a for a in perm.get("dataActions", []) if not _is_read(a)]
        extra += [a for a in perm.get("actions", []) if _reaches_vaults(a) and not _is_read(a)]
    return extra


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def least_privilege(
    g: Graph, backend: Backend, options: Options, last_used: Callable[[str], str | None] | None = None,
    now: datetime | None = None,
) -> list[Finding]:
    try:
        return _least_privilege(g, backend, options, last_used, now or datetime.now(UTC))
    except Exception as exc:
        if _refused(exc):
            raise Refused(getattr(exc, "message", str(exc))) from None
        raise


def _least_privilege(
    g: Graph, backend: Backend, options: Options, last_used: Callable[[str], str | None] | None, now: datetime,
) -> list[Finding]:
    out: list[Finding] = []
    sub = backend.subscription_id
    vault_ids = {v["name"].lower(): v["id"] for v in
                 backend.arm("GET", f"/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults").get("value", [])}
    definitions: dict[str, dict] = {}
    for r in readings(g):
        vault_id = vault_ids.get(r.vault)
        if vault_id is None:
            continue  # the vault is not on this server
        try:
            principal = backend.arm("GET", f"/strongroom/directory/principals/{r.client_id}")
        except Exception as exc:  # unknown identity: nothing to check against
            if getattr(exc, "code", None) == "PrincipalNotFound":
                continue
            raise
        oid = principal["objectId"]
        assignments = backend.arm("GET", f"/subscriptions/{sub}/{AUTHZ}/roleAssignments",
                                  params={"api-version": ROLE_API, "$filter": f"principalId eq '{oid}'"}).get("value", [])
        line = r.spc.line(("spec", "parameters", "clientID"))
        secret_scoped = " ; ".join(r.fix_commands(vault_id))
        all_secrets: set[str] | None = None
        for a in assignments:
            p = a["properties"]
            scope = p["scope"]
            if not (_covers(scope, vault_id) or _covers(vault_id, scope)):
                continue
            rd_id = p["roleDefinitionId"]
            if rd_id not in definitions:
                definitions[rd_id] = backend.arm("GET", rd_id, params={"api-version": ROLE_API})
            rd = definitions[rd_id]
            role_name = rd.get("properties", {}).get("roleName", rd_id)
            delete = f"strongroom role assignment delete --ids {a['id']}"
            subject = f"{r.client_id}#{a['name']}"
            extra = _exceeds_read(rd)
            if extra:
                out.append(Finding(
                    "SR201", r.spc.file, line,
                    f"Identity {r.client_id} (clientID of {r.spc.describe()}) holds \"{role_name}\" at {scope}, which "
                    f"allows {', '.join(sorted(set(extra))[:4])}; it only needs to read "
                    f"{', '.join(sorted(r.objects)) or 'its objects'}. Replace it with read roles scoped to each object.",
                    fix=f"{secret_scoped} ; {delete}" if secret_scoped else delete, subject=subject))
            elif _covers(scope, vault_id):
                if all_secrets is None:
                    all_secrets = {s["id"].rstrip("/").rsplit("/", 1)[-1].lower()
                                   for s in backend.vault_pages(r.vault, "/secrets")}
                if r.secrets() and r.secrets() < all_secrets:
                    out.append(Finding(
                        "SR202", r.spc.file, line,
                        f"Identity {r.client_id} holds \"{role_name}\" on all of {scope} but its SecretProviderClasses "
                        f"read only {', '.join(sorted(r.secrets()))} ({len(r.secrets())} of {len(all_secrets)} secrets): "
                        "assign the role on those secrets and delete the vault-wide assignment.",
                        fix=f"{secret_scoped} ; {delete}", subject=subject))
            if last_used is not None:
                created = _parse_time(p.get("createdOn"))
                cutoff = now - timedelta(days=options.unused_days)
                used = _parse_time(last_used(a["id"]))
                if created is not None and created < cutoff and (used is None or used < cutoff):
                    when = f"last used {used:%Y-%m-%d}" if used else "never used"
                    out.append(Finding(
                        "SR203", r.spc.file, line,
                        f"Role assignment {a['name']} (\"{role_name}\" for {r.client_id} at {scope}) is {when} "
                        f"according to the audit log (threshold {options.unused_days} days): delete it.",
                        fix=delete, subject=subject))
    return out


def _vaults_to_ask(g: Graph, backend: Backend) -> list[str]:
    names = {str(spc_parameters(s).get("keyvaultName")).lower() for s in g.spcs
             if VAULT_NAME.match(str(spc_parameters(s).get("keyvaultName") or ""))}
    try:
        listed = backend.arm("GET", f"/subscriptions/{backend.subscription_id}/providers/Microsoft.KeyVault/vaults")
        names |= {v["name"].lower() for v in listed.get("value", [])}
    except Exception:  # a caller without control-plane rights still checks the vaults its SPCs name
        pass
    return sorted(names)


def live_values(raw_docs: list[Doc], g: Graph, backend: Backend) -> list[Finding]:
    """SR403: strings equal to a current secret value, found by keyed digests (see keyvault/value_match.py)."""
    where: dict[str, list[tuple[Doc, int, tuple]]] = {}
    for d in raw_docs:
        for value, line, path in d.strings:
            if value.strip() and len(value) <= 25 * 1024:
                where.setdefault(value, []).append((d, line, path))
    if not where:
        return []
    out: list[Finding] = []
    candidates = list(where)
    for vault in _vaults_to_ask(g, backend):
        for start in range(0, len(candidates), value_match.MAX_DIGESTS):
            chunk = candidates[start:start + value_match.MAX_DIGESTS]
            salt = pysecrets.token_bytes(32)
            by_digest = {value_match.b64(value_match.digest(salt, c)): c for c in chunk}
            try:
                answer = backend.vault(vault, "POST", MATCH_PATH,
                                       json={"salt": value_match.b64(salt), "digests": list(by_digest)})
            except Exception as exc:
                if getattr(exc, "code", None) in ("VaultNotFound", "Unauthorized") or _refused(exc):
                    break
                raise
            for m in answer.get("value", []):
                candidate = by_digest.get(m.get("digest", ""))
                if candidate is None:
                    continue
                for d, line, path in where[candidate]:
                    field_ = ".".join(str(p) for p in path)
                    out.append(Finding(
                        "SR403", d.file, line,
                        f"{d.describe() if d.kind else 'document'} field {field_} equals the current value of secret "
                        f"{m['name']} in vault {vault}: the live secret is in Git. Rotate it now and remove it from "
                        "the file.",
                        fix=f"strongroom keyvault secret set --vault-name {vault} --name {m['name']} --value <new value>",
                        subject=f"{d.describe()}#{field_}#{vault}/{m['name']}"))
    return out
