"""May they: evaluate a caller's request against the vault's permission model."""

from strongroom.authz.engine import Authorizer, Caller, Decision, forbidden

__all__ = ["Authorizer", "Caller", "Decision", "forbidden"]
