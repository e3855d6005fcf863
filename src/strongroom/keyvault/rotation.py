"""Key rotation policies (KeyRotationPolicy in keys.json) and when their actions fall due.

A policy has lifetime actions — Rotate (make a new version) or Notify (a
KeyNearExpiry event) — each triggered `timeAfterCreate` the current version
was made or `timeBeforeExpiry` it expires, and `expiryTime`, the lifetime
given to versions the policy creates. Rules as Key Vault documents them
(keys/how-to-configure-key-rotation.md): rotation no sooner than 7 days after
creation nor later than 7 days before expiry, `timeBeforeExpiry` needs
`expiryTime`, Notify only before expiry, expiryTime at least 28 days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strongroom.keyvault import durations
from strongroom.keyvault.durations import Duration
from strongroom.keyvault.errors import bad_parameter

MIN_ROTATION = 7 * 86400
MIN_EXPIRY = 28 * 86400
ACTIONS = ("Rotate", "Notify")


@dataclass
class LifetimeAction:
    action: str  # "Rotate" | "Notify"
    after_create: Duration | None = None
    before_expiry: Duration | None = None

    def due_at(self, created: int, exp: int | None) -> int | None:
        """When this action falls due for a version made at `created` expiring at `exp` (None: never)."""
        if self.after_create is not None:
            return self.after_create.add_to(created)
        if self.before_expiry is not None and exp is not None:
            return self.before_expiry.subtract_from(exp)
        return None

    def to_wire(self) -> dict[str, Any]:
        trigger = (
            {"timeAfterCreate": self.after_create.text} if self.after_create else {"timeBeforeExpiry": self.before_expiry.text}  # type: ignore[union-attr]
        )
        return {"trigger": trigger, "action": {"type": self.action}}


@dataclass
class RotationPolicy:
    actions: list[LifetimeAction] = field(default_factory=list)
    expiry: Duration | None = None
    created: int | None = None
    updated: int | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "lifetimeActions": [a.to_wire() for a in self.actions],
            "expiryTime": self.expiry.text if self.expiry else None,
            "created": self.created,
            "updated": self.updated,
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> RotationPolicy:
        policy = parse_policy({"lifetimeActions": rec["lifetimeActions"], "attributes": {"expiryTime": rec.get("expiryTime")}}, check=False)
        policy.created, policy.updated = rec.get("created"), rec.get("updated")
        return policy

    def rotate_action(self) -> LifetimeAction | None:
        return next((a for a in self.actions if a.action == "Rotate"), None)

    def notify_action(self) -> LifetimeAction | None:
        return next((a for a in self.actions if a.action == "Notify"), None)


def default_policy() -> RotationPolicy:
    """What a key without a policy answers: notify 30 days before expiry, no rotation."""
    return RotationPolicy([LifetimeAction("Notify", before_expiry=durations.parse("P30D"))])


def _duration(value: Any, field_name: str) -> Duration:
    d = durations.parse(value)
    if d is None:
        raise bad_parameter(f"'{field_name}' must be an ISO 8601 duration such as P90D or P1Y; got {value!r}.")
    return d


def parse_policy(body: Any, check: bool = True) -> RotationPolicy:
    """A KeyRotationPolicy body, validated as Key Vault validates it (400 BadParameter otherwise)."""
    if not isinstance(body, dict):
        raise bad_parameter("The request body must be a key rotation policy object.")
    attrs = body.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise bad_parameter("'attributes' must be an object.")
    expiry = None if attrs.get("expiryTime") in (None, "") else _duration(attrs["expiryTime"], "expiryTime")
    raw_actions = body.get("lifetimeActions") or []
    if not isinstance(raw_actions, list):
        raise bad_parameter("'lifetimeActions' must be an array.")
    actions: list[LifetimeAction] = []
    for item in raw_actions:
        if not isinstance(item, dict) or not isinstance(item.get("trigger"), dict) or not isinstance(item.get("action"), dict):
            raise bad_parameter("Each lifetime action needs a 'trigger' and an 'action' object.")
        kind = item["action"].get("type")
        # Key Vault accepts the action type case-insensitively ("rotate" from older SDKs).
        canonical = next((a for a in ACTIONS if isinstance(kind, str) and a.lower() == kind.lower()), None)
        if canonical is None:
            raise bad_parameter(f"The lifetime action type '{kind}' is not valid. Valid types: Rotate, Notify.")
        trigger = item["trigger"]
        after, before = trigger.get("timeAfterCreate"), trigger.get("timeBeforeExpiry")
        if (after is None) == (before is None):
            raise bad_parameter("A lifetime action trigger needs exactly one of 'timeAfterCreate' or 'timeBeforeExpiry'.")
        action = LifetimeAction(
            canonical,
            after_create=_duration(after, "timeAfterCreate") if after is not None else None,
            before_expiry=_duration(before, "timeBeforeExpiry") if before is not None else None,
        )
        if any(a.action == canonical for a in actions):
            raise bad_parameter(f"A rotation policy may have only one '{canonical}' action.")
        actions.append(action)
    policy = RotationPolicy(actions, expiry)
    if check:
        _check_rules(policy)
    return policy


def _check_rules(policy: RotationPolicy) -> None:
    if policy.expiry is not None and policy.expiry.approx_seconds() < MIN_EXPIRY:
        raise bad_parameter("The expiry time of a rotation policy must be at least 28 days (P28D).")
    for a in policy.actions:
        if a.action == "Notify" and a.after_create is not None:
            raise bad_parameter("Notify actions can only be triggered by 'timeBeforeExpiry'.")
        if a.before_expiry is not None and policy.expiry is None:
            raise bad_parameter("A 'timeBeforeExpiry' trigger needs the policy's 'expiryTime'.")
        if a.action != "Rotate":
            continue
        if a.after_create is not None and a.after_create.approx_seconds() < MIN_ROTATION:
            raise bad_parameter("A key can be rotated no sooner than 7 days after it was created (timeAfterCreate >= P7D).")
        if a.before_expiry is not None:
            if a.before_expiry.approx_seconds() < MIN_ROTATION:
                raise bad_parameter("A key must be rotated at least 7 days before it expires (timeBeforeExpiry >= P7D).")
            assert policy.expiry is not None
            if policy.expiry.approx_seconds() - a.before_expiry.approx_seconds() < MIN_ROTATION:
                raise bad_parameter("timeBeforeExpiry must leave at least 7 days between creation and rotation.")
        if a.after_create is not None and policy.expiry is not None:
            if policy.expiry.approx_seconds() - a.after_create.approx_seconds() < MIN_ROTATION:
                raise bad_parameter("timeAfterCreate must rotate the key at least 7 days before it expires.")
