"""Federated identity credentials: which external tokens a principal trusts, with Entra's rules.

A credential says "a token from `issuer` about `subject` for `audience` may act as
this identity". Matching is exact and case-sensitive (no wildcards), as Entra's.
Rules enforced on write, as Entra does: name 3..120 characters (letters, digits,
dash, underscore; first a letter or digit); issuer, subject and the audience at
most 600 characters; exactly one audience; at most 20 credentials per identity;
an issuer+subject pair at most once per identity.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from strongroom.barrier import SealedStore, records
from strongroom.identity.directory import DirectoryError, Principal
from strongroom.util.clock import now

DEFAULT_AUDIENCE = "api://AzureADTokenExchange"
MAX_PER_IDENTITY = 20
MAX_FIELD = 600
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,119}\Z")
_PREFIX = "identity/fics/"


@dataclass
class FederatedCredential:
    name: str
    issuer: str
    subject: str
    audiences: list[str]
    description: str | None = None
    id: str = ""  # Graph's id for app credentials
    created: int = 0


def _key(client_id: str, name: str) -> str:
    return f"{_PREFIX}{client_id.lower()}/{name.lower()}"


def _bad(message: str) -> DirectoryError:
    return DirectoryError(400, "BadRequest", message)


def validate(name: str, issuer: Any, subject: Any, audiences: Any, description: Any = None) -> FederatedCredential:
    """Entra's write-time rules; raises DirectoryError(400) naming the first rule broken."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad(
            f"Federated identity credential name '{name}' is invalid. The name must be 3 to 120 characters long, "
            "contain only letters, numbers, hyphens and underscores, and start with a letter or number."
        )
    if not isinstance(issuer, str) or not issuer:
        raise _bad("The federated identity credential must have an issuer.")
    if len(issuer) > MAX_FIELD:
        raise _bad(f"The issuer must be at most {MAX_FIELD} characters long.")
    parts = urlsplit(issuer)
    if issuer != issuer.strip() or parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise _bad(f"The issuer '{issuer}' is not a valid URL: it must be an https URL without query, fragment or spaces.")
    if not isinstance(subject, str) or not subject:
        raise _bad("The federated identity credential must have a subject.")
    if len(subject) > MAX_FIELD:
        raise _bad(f"The subject must be at most {MAX_FIELD} characters long.")
    if not isinstance(audiences, list) or len(audiences) != 1:
        raise _bad("Federated identity credentials must have exactly one audience.")
    audience = audiences[0]
    if not isinstance(audience, str) or not audience:
        raise _bad("The audience of a federated identity credential must be a non-empty string.")
    if len(audience) > MAX_FIELD:
        raise _bad(f"The audience must be at most {MAX_FIELD} characters long.")
    if description is not None and (not isinstance(description, str) or len(description) > MAX_FIELD):
        raise _bad(f"The description must be a string of at most {MAX_FIELD} characters.")
    return FederatedCredential(name=name, issuer=issuer, subject=subject, audiences=[audience], description=description)


class FederatedCredentials:
    """The federated credentials of each principal, stored behind the barrier."""

    def __init__(self, store: SealedStore) -> None:
        self.store = store

    def list(self, principal: Principal) -> list[FederatedCredential]:
        prefix = f"{_PREFIX}{principal.client_id.lower()}/"
        return [FederatedCredential(**records.json_load(raw)) for _, raw in self.store.scan(prefix)]

    def get(self, principal: Principal, name_or_id: str) -> FederatedCredential | None:
        """By name (ARM and Graph) or by Graph's id."""
        if "/" not in name_or_id:
            rec = records.load(self.store, _key(principal.client_id, name_or_id))
            if rec is not None:
                return FederatedCredential(**rec)
        return next((f for f in self.list(principal) if f.id.lower() == name_or_id.lower()), None)

    def put(self, principal: Principal, fic: FederatedCredential) -> tuple[FederatedCredential, bool]:
        """Create or replace the credential named `fic.name`; returns (credential, created)."""
        existing = self.list(principal)
        same = next((f for f in existing if f.name.lower() == fic.name.lower()), None)
        others = [f for f in existing if f is not same]
        if any(f.issuer == fic.issuer and f.subject == fic.subject for f in others):
            kind = "Managed Identity" if principal.is_managed_identity else "application"
            raise DirectoryError(409, "Conflict", f"Issuer and subject combination already exists for this {kind}.")
        if same is None and len(existing) >= MAX_PER_IDENTITY:
            raise _bad(
                f"The number of federated identity credentials on this identity would exceed the limit of "
                f"{MAX_PER_IDENTITY}."
            )
        if same is not None:  # the name is immutable: keep its original spelling and id
            fic.name, fic.id, fic.created = same.name, same.id, same.created
        else:
            fic.id, fic.created = str(uuid.uuid4()), now()
        self.store.write({_key(principal.client_id, fic.name): records.dump(asdict(fic))})
        return fic, same is None

    def delete(self, principal: Principal, fic: FederatedCredential) -> None:
        self.store.write({_key(principal.client_id, fic.name): None})

    def removal_writes(self, principal: Principal) -> dict[str, bytes | None]:
        """Writes that delete every credential of `principal` (to batch with deleting the principal)."""
        return {_key(principal.client_id, f.name): None for f in self.list(principal)}
