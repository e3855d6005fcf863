"""Client assertions at the token endpoint: federated tokens and certificate-signed JWTs.

Federated (workload identity): the assertion comes from an external issuer and
must match one of the client's federated identity credentials. The issuer is
looked up among the credentials *before* anything is fetched, so only issuers
an administrator configured are ever contacted; then the signature and times
are verified; then subject and audience are matched, and a mismatch gets the
most specific of Entra's codes: 700213 when only the subject fails, 700212 when
only the audience fails, 70021 when both (or no single credential) fail.

Certificate: the assertion is signed by the app itself (iss = sub = client_id)
with the private key of a certificate registered on the app, named by the
`x5t` (SHA-1, RS256 as azure-identity sends it) or `x5t#S256` (SHA-256, PS256 as
MSAL sends it) header; its audience is this tenant's token endpoint.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import jwt
from cryptography import x509

from strongroom.identity import errors
from strongroom.identity.directory import Directory, Principal
from strongroom.identity.errors import EntraError
from strongroom.identity.fic import FederatedCredential
from strongroom.identity.jws import Jws, signature_valid
from strongroom.identity.oidc import ALGORITHMS as FEDERATED_ALGORITHMS
from strongroom.identity.oidc import IssuerKeys, IssuerUnavailable, KeyNotFound

CERTIFICATE_ALGORITHMS = ("RS256", "PS256")
MAX_SKEW = 300
MAX_LIFETIME = 24 * 3600


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def check_times(claims: dict[str, Any], now: float) -> None:
    """exp required; nbf and iat, when present, not in the future; lifetime at most 24 h (bounded skew)."""
    exp, nbf, iat = _number(claims.get("exp")), _number(claims.get("nbf")), _number(claims.get("iat"))
    start = nbf if nbf is not None else iat
    if exp is None or exp + MAX_SKEW < now:
        raise errors.time_range(now, start, exp)
    if (nbf is not None and nbf - MAX_SKEW > now) or (iat is not None and iat - MAX_SKEW > now):
        raise errors.time_range(now, start, exp)
    if start is not None and exp - start > MAX_LIFETIME:
        raise errors.time_range(now, start, exp, " The assertion's lifetime is longer than 24 hours.")


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return aud
    return []


def _verify_signature(token: Jws, key: Any, alg: str, client_id: str) -> None:
    try:
        valid = signature_valid(token, key, alg)
    except jwt.PyJWTError:  # e.g. a certificate whose key cannot make `alg` signatures
        raise errors.malformed_assertion() from None
    if not valid:
        raise errors.bad_signature("The signature of the assertion is not valid.", client_id)
    # `sub` and `jti`, when present, are strings (as PyJWT's decode has always required of them here).
    if any(name in token.claims and not isinstance(token.claims[name], str) for name in ("sub", "jti")):
        raise errors.malformed_assertion()


def verify_federated(
    principal: Principal,
    token: Jws,
    fics: list[FederatedCredential],
    issuer_keys: IssuerKeys,
    now: float,
    fetch: bool = True,
) -> FederatedCredential:
    """The federated credential this assertion satisfies, or the Entra error that explains why none does.

    `fetch=False`: raise FetchNeeded rather than wait for the issuer's keys (see IssuerKeys.key).
    """
    header, claims = token.header, token.claims
    issuer, subject, audiences = claims.get("iss"), claims.get("sub"), _audiences(claims)
    if not isinstance(issuer, str) or not isinstance(subject, str) or not audiences:
        raise errors.malformed_assertion()
    if not fics:
        raise errors.no_federated_credentials(principal.client_id, principal.display_name)
    candidates = [f for f in fics if f.issuer == issuer]
    if not candidates:
        raise errors.issuer_mismatch(issuer)
    alg = header.get("alg")
    if alg not in FEDERATED_ALGORITHMS:
        raise errors.bad_signature(f"The assertion is signed with '{alg}'; only RS256 and ES256 are accepted.", principal.client_id)
    kid = header.get("kid")
    try:
        key = issuer_keys.key(issuer, kid if isinstance(kid, str) else None, alg, fetch=fetch)
    except IssuerUnavailable as exc:
        raise errors.issuer_metadata_failed(issuer, str(exc)) from None
    except KeyNotFound:
        raise errors.bad_signature(f"The key was not found., Key id used by the issuer: '{kid}'", principal.client_id) from None
    _verify_signature(token, key, alg, principal.client_id)
    check_times(claims, now)
    for fic in candidates:
        if fic.subject == subject and fic.audiences[0] in audiences:
            return fic
    subject_ok = any(f.subject == subject for f in candidates)
    audience_ok = any(f.audiences[0] in audiences for f in candidates)
    shown_audience = ",".join(audiences)
    if subject_ok and not audience_ok:
        raise errors.audience_mismatch(shown_audience)
    if audience_ok and not subject_ok:
        raise errors.subject_mismatch(subject)
    raise errors.no_matching_fic(issuer, subject, shown_audience)


def _thumbprint(header: dict[str, Any], name: str) -> str | None:
    value = header.get(name)
    if not isinstance(value, str):
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()
    except (binascii.Error, ValueError):
        return None


def verify_certificate(
    principal: Principal,
    token: Jws,
    directory: Directory,
    token_endpoints: set[str],
    now: float,
) -> dict[str, Any]:
    """The registered certificate (key credential) that signed this assertion."""
    header, claims = token.header, token.claims
    if claims.get("iss") != principal.client_id or claims.get("sub") != principal.client_id:
        raise errors.assertion_client_mismatch()
    alg = header.get("alg")
    if alg not in CERTIFICATE_ALGORITHMS:
        raise errors.bad_signature(f"The assertion is signed with '{alg}'; only RS256 and PS256 are accepted.", principal.client_id)
    sha256, sha1 = _thumbprint(header, "x5t#S256"), _thumbprint(header, "x5t")
    cert = directory.certificate(principal, sha1=sha1, sha256=sha256)
    if cert is None:
        shown = (sha256 or sha1 or "").upper()
        raise errors.bad_signature(f"The key was not found., Thumbprint of key used by client: '{shown}'", principal.client_id)
    if cert.get("end") is not None and cert["end"] < now:
        raise EntraError(
            401, "invalid_client", 700027,
            "The certificate with identifier used to sign the client assertion is expired on application. "
            f"[Reason - The key used is expired., Thumbprint of key used by client: '{cert['thumbprint']}']",
        )
    public_key = x509.load_der_x509_certificate(base64.b64decode(cert["der"])).public_key()
    _verify_signature(token, public_key, alg, principal.client_id)
    if not any(a.rstrip("/").lower() in token_endpoints for a in _audiences(claims)):
        raise errors.assertion_audience_mismatch()
    check_times(claims, now)
    return cert
