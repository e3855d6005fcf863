"""The lifetime actions of a vault's objects, decided at the vault's `vault_now`.

One `run(vault)` pass looks at the current version of every live key,
certificate and secret and does what is due:

- keys: the rotation policy's Rotate (a new version) and Notify (a NearExpiry
  event; the default policy notifies 30 days before `exp`); Expired once `exp` passed;
- certificates: AutoRenew at `lifetime_percentage` of the validity or
  `days_before_expiry` (the next version from the same policy), EmailContacts
  (a NearExpiry event for the contacts), NearExpiry 30 days before `exp`, Expired;
- secrets: NearExpiry 30 days before `exp`, Expired.

Each event is written with a marker record, in one transaction, so a version
gets each event once however many passes see it. The server runs passes from
one worker at a time (server/scheduler.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from strongroom.audit import service as service_audit
from strongroom.barrier import records
from strongroom.events.feed import Change, ObjectChange, write_with_events
from strongroom.keyvault.certificates import CertificateStore
from strongroom.keyvault.errors import KeyVaultError
from strongroom.keyvault.keys import KeyStore, key_event
from strongroom.keyvault.layout import LIFECYCLE_MARKERS
from strongroom.keyvault.objects import Head
from strongroom.keyvault.secrets import secret_objects
from strongroom.keyvault.vaults import Vault
from strongroom.util.clock import vault_now
from strongroom.util.gil import yield_gil

log = logging.getLogger("strongroom.lifecycle")
NEAR_EXPIRY = 30 * 86400


@dataclass
class Report:
    rotated: list[str] = field(default_factory=list)
    renewed: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (object type, name, change)


def cert_action_due(trigger: dict[str, Any], nbf: int, exp: int) -> int:
    if trigger.get("lifetime_percentage") is not None:
        return nbf + (exp - nbf) * int(trigger["lifetime_percentage"]) // 100
    return exp - int(trigger["days_before_expiry"]) * 86400


class Lifecycle:
    def __init__(self, keys: KeyStore, certificates: CertificateStore) -> None:
        self.keys = keys
        self.certificates = certificates
        self.store = keys.store
        self.secrets = secret_objects(keys.store)

    def _marker_key(self, vault: Vault, object_type: str, name: str, version: str) -> str:
        return f"{LIFECYCLE_MARKERS.vault_prefix(vault.key)}{object_type}/{name.lower()}/{version.lower()}"

    def _once(self, vault: Vault, event: ObjectChange, marker: str, report: Report) -> bool:
        """Record `event` unless this version already had the `marker` one."""
        assert event.version is not None
        key = self._marker_key(vault, event.object_type, event.name, event.version)
        done = records.load(self.store, key) or {}
        if marker in done:
            return False
        done[marker] = vault_now(vault.key)
        operation = service_audit.expiry_operation(event.object_type, event.change == Change.NEAR_EXPIRY)
        with service_audit.action(operation, vault, f"{event.object_type}s", event.name):
            write_with_events(self.store, vault, {key: records.dump(done)}, [event])
        report.events.append((event.object_type, event.name, event.change.value))
        return True

    def _expiry_events(self, vault: Vault, object_type: str, name: str, version: str, nbf: int | None, exp: int | None,
                       t: int, report: Report, near: bool = True) -> None:
        if exp is None:
            return
        if t >= exp:
            self._once(vault, ObjectChange(object_type, Change.EXPIRED, name, version, nbf, exp), "expired", report)
        elif near and t >= exp - NEAR_EXPIRY:
            self._once(vault, ObjectChange(object_type, Change.NEAR_EXPIRY, name, version, nbf, exp), "near", report)

    def run(self, vault: Vault) -> Report:
        report = Report()
        for kind, heads, step in (
            ("key", self.keys.objects.heads, self._key),
            ("certificate", self.certificates.objects.heads, self._certificate),
            ("secret", self.secrets.heads, self._secret),
        ):
            for head in list(heads(vault)):
                yield_gil()  # a pass runs in a thread beside the event loop: let requests in between objects
                if head.deleted is not None:
                    continue
                try:
                    step(vault, head, report)
                except Exception as exc:  # one bad object must not hold up the others
                    log.warning("lifecycle of %s %s/%s failed: %s", kind, vault.name, head.name, type(exc).__name__)
        return report

    def _key(self, vault: Vault, head: Head, report: Report) -> None:
        kv = self.keys.objects.version(vault, head.name, head.current)
        if kv is None or kv.managed:
            return  # a certificate's key follows its certificate
        t = vault_now(vault.key)
        policy = self.keys.get_policy(vault, head.name)
        rotate = policy.rotate_action()
        if rotate is not None:
            due = rotate.due_at(kv.created, kv.exp)
            if due is not None and t >= due:
                with service_audit.action("KeyRotate", vault, "keys", head.name):
                    new = self.keys.rotate(vault, head.name)
                report.rotated.append(head.name)
                log.info("rotated key %s/%s to version %s", vault.name, head.name, new.version)
                return
        notify = policy.notify_action()
        if notify is not None and kv.exp is not None:
            due = notify.due_at(kv.created, kv.exp)
            if due is not None and t >= due and t < kv.exp:
                self._once(vault, key_event(Change.NEAR_EXPIRY, kv), "near", report)
        self._expiry_events(vault, "key", kv.name, kv.version, kv.nbf, kv.exp, t, report, near=False)

    def _certificate(self, vault: Vault, head: Head, report: Report) -> None:
        cv = self.certificates.objects.version(vault, head.name, head.current)
        if cv is None or cv.pending or cv.nbf is None or cv.exp is None:
            return
        policy = self.certificates.policies.get(vault, head.name) or {}
        t = vault_now(vault.key)
        for action in policy.get("lifetime_actions") or []:
            if t < cert_action_due(action["trigger"], cv.nbf, cv.exp):
                continue
            kind = action["action"]["action_type"]
            if kind == "AutoRenew" and self._renew(vault, head, cv.version, t, report):
                return  # the next version has its own schedule
            if kind == "EmailContacts":
                event = ObjectChange("certificate", Change.NEAR_EXPIRY, cv.name, cv.version, cv.nbf, cv.exp)
                self._once(vault, event, "email", report)
        self._expiry_events(vault, "certificate", cv.name, cv.version, cv.nbf, cv.exp, t, report)

    def _renew(self, vault: Vault, head: Head, version: str, t: int, report: Report) -> bool:
        """Renew once; an issuer that cannot renew (Unknown, external) is not asked again for this version."""
        marker_key = self._marker_key(vault, "certificate", head.name, version)
        done = records.load(self.store, marker_key) or {}
        if "renew" in done:
            return False
        try:
            with service_audit.action("CertificateRenew", vault, "certificates", head.name):
                op = self.certificates.renew(vault, head.name)
        except KeyVaultError as exc:  # e.g. its issuer was deleted: say so once, not every pass
            log.warning("certificate %s/%s cannot renew: %s", vault.name, head.name, exc.code)
            op = None
        if op is None or op.status != "completed":
            with service_audit.action("CertificateRenew", vault, "certificates", head.name):
                self.store.write({marker_key: records.dump({**done, "renew": t})})
            return False
        report.renewed.append(head.name)
        log.info("renewed certificate %s/%s: version %s", vault.name, head.name, op.version)
        return True

    def _secret(self, vault: Vault, head: Head, report: Report) -> None:
        sv = self.secrets.version(vault, head.name, head.current)
        if sv is None or sv.managed or sv.exp is None:
            return  # a certificate's secret follows its certificate
        self._expiry_events(vault, "secret", sv.name, sv.version, sv.nbf, sv.exp, vault_now(vault.key), report)
