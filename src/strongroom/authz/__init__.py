"""May they: evaluate a caller's request against the vault's permission model."""

from strongroom.authz.engine import Authorizer, Caller, Decision, forbidden
from strongroom.authz.store import AuthzStore

__all__ = ["Authorizer", "AuthzStore", "Caller", "Decision", "forbidden"]
