"""Entra ID's error shape for the token endpoint, and the AADSTS errors this server raises.

The constructors below carry Entra's own wording so that a user who pastes the
message into a search engine lands on the same explanations as for Azure.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from strongroom.errors import ServiceError

WIF_DOCS = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
CERT_DOCS = "https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials"
_CHECK_FIC = "Check your federated identity credential Subject, Audience and Issuer against the presented assertion."
_CASE = "Please note that the matching is done using a case-sensitive comparison."


class EntraError(ServiceError):
    """A token endpoint refusal: OAuth's `error` (the tree's `code`), Entra's AADSTS number and its description.

    Rendered in OAuth's shape on the token endpoint (strongroom.errors.entra_body).
    """

    code: str

    def __init__(self, status: int, error: str, aadsts: int, description: str, trace_id: str | None = None) -> None:
        super().__init__(status, error, description)
        self.aadsts = aadsts
        self.trace_id = trace_id or str(uuid.uuid4())

    def __str__(self) -> str:
        return f"AADSTS{self.aadsts}: {self.message}"

    def oauth_error(self) -> tuple[str, int]:
        return self.code, self.aadsts


def _iso(ts: float) -> str:
    """Entra prints times with seven fractional digits."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


# -- request shape -------------------------------------------------------------


def missing_parameter(name: str) -> EntraError:
    return EntraError(400, "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'.")


def no_credential() -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )


def malformed_assertion() -> EntraError:
    return EntraError(400, "invalid_request", 50027, "JWT token is invalid or malformed.")


def unknown_client(client_id: str, tenant_id: str) -> EntraError:
    return EntraError(
        400,
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant_id}'. This can happen if "
        "the application has not been installed by the administrator of the tenant or consented to by any user in "
        "the tenant. You may have sent your authentication request to the wrong tenant.",
    )


# -- client secrets -------------------------------------------------------------


def invalid_secret(client_id: str) -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "
        f"not the client secret ID, for a secret added to app '{client_id}'.",
    )


def expired_secret(client_id: str) -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        7000222,
        f"The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new "
        f"keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added "
        "security: https://aka.ms/certCreds.",
    )


# -- assertions (certificate-signed and federated) ------------------------------


def time_range(now: float, valid_from: float | None, expires: float | None, extra: str = "") -> EntraError:
    start = _iso(valid_from) if valid_from is not None else "(not given)"
    end = _iso(expires) if expires is not None else "(not given)"
    return EntraError(
        401,
        "invalid_client",
        700024,
        f"Client assertion is not within its valid time range. Current time: {_iso(now)}, assertion valid from "
        f"{start}, expiry time of assertion {end}.{extra} Review the documentation at {CERT_DOCS} .",
    )


def bad_signature(reason: str, client_id: str) -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        700027,
        f"Client assertion failed signature validation. [Reason - {reason}, Please visit the Azure Portal, Graph "
        f"Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'. Review the documentation "
        f"at {CERT_DOCS} .]",
    )


def assertion_client_mismatch() -> EntraError:
    return EntraError(
        401, "invalid_client", 700021, "Client assertion application identifier doesn't match 'client_id' parameter. "
        f"Review the documentation at {CERT_DOCS} ."
    )


def assertion_audience_mismatch() -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        700023,
        f"Client assertion audience claim does not match Realm issuer. Review the documentation at {CERT_DOCS} .",
    )


def no_federated_credentials(client_id: str, display_name: str) -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        70025,
        f"The client '{client_id}'({display_name}) has no configured federated identity credentials.",
    )


def no_matching_fic(issuer: str, subject: str, audience: str) -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        70021,
        f"No matching federated identity record found for presented assertion. Assertion Issuer: '{issuer}'. "
        f"Assertion Subject: '{subject}'. Assertion Audience: '{audience}'. {WIF_DOCS}",
    )


def issuer_mismatch(issuer: str) -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        700211,
        f"No matching federated identity record found for presented assertion issuer '{issuer}'. {_CASE} "
        f"{_CHECK_FIC} {WIF_DOCS}",
    )


def audience_mismatch(audience: str) -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        700212,
        f"No matching federated identity record found for presented assertion audience '{audience}'. {_CASE} "
        f"{_CHECK_FIC} {WIF_DOCS}",
    )


def subject_mismatch(subject: str) -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        700213,
        f"No matching federated identity record found for presented assertion subject '{subject}'. {_CHECK_FIC} "
        f"{WIF_DOCS}",
    )


def issuer_metadata_failed(issuer: str, reason: str) -> EntraError:
    """The issuer's discovery document or JWKS could not be fetched (the reason says what went wrong)."""
    return EntraError(
        401,
        "invalid_client",
        50166,
        f"Request to External OIDC endpoint failed. Issuer: '{issuer}'. Reason: {reason}",
    )
