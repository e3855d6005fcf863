"""Key Vault's subject strings ("CN=www.contoso.com, O=Contoso, C=US") as X.500 names.

Its own module so that policy validation (certpolicy) and issuance (x509build)
both use it without importing each other.
"""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from strongroom.keyvault.errors import bad_parameter

_DOTTED = re.compile(r"^[0-2](\.[0-9]+)+\Z")
_ATTRS = {
    "CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "L": NameOID.LOCALITY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME, "S": NameOID.STATE_OR_PROVINCE_NAME,
    "C": NameOID.COUNTRY_NAME, "E": NameOID.EMAIL_ADDRESS, "EMAIL": NameOID.EMAIL_ADDRESS,
    "STREET": NameOID.STREET_ADDRESS, "DC": NameOID.DOMAIN_COMPONENT, "SERIALNUMBER": NameOID.SERIAL_NUMBER,
    "T": NameOID.TITLE, "G": NameOID.GIVEN_NAME, "SN": NameOID.SURNAME, "UID": NameOID.USER_ID,
    "POSTALCODE": NameOID.POSTAL_CODE,
}


def _split_rdns(subject: str) -> list[str]:
    """Split "CN=a, O=b\\, Inc" on unescaped commas or semicolons; quotes keep commas too."""
    parts, cur, quoted, escaped = [], [], False, False
    for ch in subject:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch in ",;" and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_subject(subject: str) -> x509.Name:
    """An X.500 name from Key Vault's subject string ("CN=www.contoso.com, O=Contoso, C=US")."""
    attrs: list[x509.NameAttribute] = []
    for rdn in _split_rdns(subject):
        key, sep, value = rdn.partition("=")
        key = key.strip()
        # Dotted OIDs, as rfc4514_string() writes attributes it has no name for (e.g. emailAddress).
        oid = ObjectIdentifier(key) if _DOTTED.match(key) else _ATTRS.get(key.upper())
        if not sep or oid is None or not value.strip():
            raise bad_parameter(f"The subject '{subject}' is not a valid X.500 distinguished name.")
        value = value.strip()
        if oid == NameOID.COUNTRY_NAME and len(value) != 2:
            raise bad_parameter(f"The country 'C={value}' must be a two-letter code.")
        attrs.append(x509.NameAttribute(oid, value))
    if not attrs:
        raise bad_parameter(f"The subject '{subject}' is not a valid X.500 distinguished name.")
    # Written most specific first (as RFC 4514 and Key Vault show it); encoded most general first.
    return x509.Name(list(reversed(attrs)))
