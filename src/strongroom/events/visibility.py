"""Who may see an event: whoever may read the object's metadata.

An event names an object, so a subscriber sees it only if they could list that
object: `readMetadata` for secrets, `read` for keys and certificates (the data
actions of Key Vault Reader and the *User roles), checked at the object's own
scope, so a role assigned on one secret shows that secret's events and no
other's. On access-policy vaults the `list` or `get` permission of the type does.
The check runs for every event when it is delivered, not when the stream opens,
so a revoked role stops the events at once.
"""

from __future__ import annotations

from strongroom.authz import Authorizer, Caller
from strongroom.events.feed import FeedEntry
from strongroom.events.schema import COLLECTIONS
from strongroom.keyvault.vaults import Vault

READ_ACTIONS = {
    "secret": "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "key": "Microsoft.KeyVault/vaults/keys/read",
    "certificate": "Microsoft.KeyVault/vaults/certificates/read",
}


class Visibility:
    """Decides per event; remembers decisions for one batch of events (roles can change between batches)."""

    def __init__(self, authorizer: Authorizer, caller: Caller) -> None:
        self.authorizer = authorizer
        self.caller = caller
        self._decided: dict[tuple[str, str], bool] = {}

    def new_batch(self) -> None:
        self._decided.clear()

    def may_see(self, vault: Vault, entry: FeedEntry) -> bool:
        if entry.vault_created != vault.created:
            return False  # an earlier vault of the same name, since purged
        key = (entry.object_type, entry.name.lower())
        found = self._decided.get(key)
        if found is None:
            found = self._decided[key] = self._check(vault, entry.object_type, entry.name)
        return found

    def _check(self, vault: Vault, object_type: str, name: str) -> bool:
        resource_id = f"{vault.resource_id}/{COLLECTIONS[object_type]}/{name}"
        action = READ_ACTIONS[object_type]
        collection = COLLECTIONS[object_type]
        decision = self.authorizer.check(self.caller, vault, action, resource_id, f"{collection}/list")
        if decision.allowed or decision.rbac:
            return decision.allowed
        return self.authorizer.check(self.caller, vault, action, resource_id, f"{collection}/get").allowed
