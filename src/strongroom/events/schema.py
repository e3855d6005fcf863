"""Feed entries as Azure Event Grid events (the Event Grid schema, as Key Vault publishes them).

    {"id": "<guid>", "topic": "<vault resource id>", "subject": "<object name>",
     "eventType": "Microsoft.KeyVault.SecretNewVersionCreated",
     "eventTime": "2026-07-01T12:00:00.123456Z",
     "data": {"Id": "https://kv1.vault.azure.net/secrets/db-password/<version>",
              "VaultName": "kv1", "ObjectType": "Secret", "ObjectName": "db-password",
              "Version": "<version>", "NBF": 1700000000, "EXP": null},
     "dataVersion": "1", "metadataVersion": "1"}

Key Vault publishes NewVersionCreated, NearExpiry and Expired for secrets, keys and
certificates. The feed also records updates, deletes, recoveries, purges and
restores, which Key Vault does not publish; those carry the type prefix
`Strongroom.KeyVault.` (e.g. `Strongroom.KeyVault.SecretDeleted`) so that no one
mistakes them for Azure's. NBF and EXP are Unix seconds as numbers (null when
unset), as the Event Grid SDK models them.
"""

from __future__ import annotations

from typing import Any

from strongroom.events.feed import Change, FeedEntry

AZURE_PREFIX = "Microsoft.KeyVault."
OWN_PREFIX = "Strongroom.KeyVault."
OBJECT_TYPE_NAMES = {"secret": "Secret", "key": "Key", "certificate": "Certificate"}
COLLECTIONS = {"secret": "secrets", "key": "keys", "certificate": "certificates"}


def event_type(object_type: str, change: Change) -> str:
    prefix = AZURE_PREFIX if change.azure else OWN_PREFIX
    return f"{prefix}{OBJECT_TYPE_NAMES[object_type]}{change.value}"


def all_event_types() -> list[str]:
    return [event_type(t, c) for t in OBJECT_TYPE_NAMES for c in Change]


def object_id(entry: FeedEntry, vault_url: str) -> str:
    """The versioned object URL, as in the object's own `id` (`kid` for keys)."""
    base = f"{vault_url.rstrip('/')}/{COLLECTIONS[entry.object_type]}/{entry.name}"
    return f"{base}/{entry.version}" if entry.version else base


def to_event_grid(entry: FeedEntry, vault_url: str) -> dict[str, Any]:
    """The Event Grid event for `entry`; `vault_url` is the vault's URL as the caller addressed it."""
    return {
        "id": entry.id,
        "topic": entry.topic,
        "subject": entry.name,
        "eventType": event_type(entry.object_type, entry.change),
        "eventTime": entry.time,
        "data": {
            "Id": object_id(entry, vault_url),
            "VaultName": entry.vault,
            "ObjectType": OBJECT_TYPE_NAMES[entry.object_type],
            "ObjectName": entry.name,
            "Version": entry.version or "",
            "NBF": entry.nbf,
            "EXP": entry.exp,
        },
        "dataVersion": "1",
        "metadataVersion": "1",
    }
