"""Which names the instance's private CA (the `Strongroom` issuer) may put in a certificate.

Any principal allowed to create certificates in some vault could otherwise get a
certificate, chaining to a root that clients trust, for any name at all --
`login.microsoftonline.com`, or `kv1.vault.localhost`, which would let it stand
in for this very server. So the CA signs only names the instance admin allowed
(`strongroom up --ca-allowed-domains example.internal,corp.example`; the default
allows none):

- an allowed domain `d` covers `d` itself and every name below it, wildcards
  included (`*.svc.d`); an entry `*.d` covers only names strictly below `d`;
- an IP address entry covers that address only;
- email and UPN names are judged by their domain part, URIs by their host;
- the subject's CN is judged like a DNS SAN when it looks like a host name or an
  address and either has a dot or the certificate has no DNS SANs (that is when
  TLS clients fall back to the CN); an emailAddress attribute like an email SAN;
- the instance's own names are refused whatever the list says: the vault host
  subtree (`vault.<dns-suffix>` and below) and the public host itself.

Self-signed certificates (issuer `Self`) are not affected: nobody trusts them by
virtue of this instance.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

_HOSTLIKE = re.compile(r"^(\*\.)?[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?\Z", re.IGNORECASE)

NOT_ALLOWED = "CertificateNameNotAllowed"


def _host(name: str) -> str:
    return name.strip().lower().rstrip(".")


def parse_allowed(values: Iterable[str]) -> tuple[str, ...]:
    """The allow-list from `--ca-allowed-domains` values (each may be comma-separated); ValueError on a bad entry."""
    out: list[str] = []
    for value in values:
        for raw in value.split(","):
            entry = _host(raw)
            if not entry:
                continue
            try:
                out.append(str(ipaddress.ip_address(entry)))
                continue
            except ValueError:
                pass
            if not _HOSTLIKE.match(entry) or entry.count("*") > 1 or entry in ("*", "*."):
                raise ValueError(f"'{raw.strip()}' is not a domain name or IP address")
            out.append(entry)
    return tuple(dict.fromkeys(out))


def _parent(name: str) -> str:
    return name.split(".", 1)[1] if "." in name else ""


def _under(name: str, domain: str) -> bool:
    return name == domain or name.endswith("." + domain)


@dataclass(frozen=True)
class CANamePolicy:
    """The allowed domains and the instance's reserved names."""

    allowed: tuple[str, ...] = ()
    reserved_subtrees: tuple[str, ...] = ()  # vault.<dns-suffix>
    reserved_hosts: tuple[str, ...] = ()  # the public host

    def _allowed_dns(self, name: str) -> bool:
        wildcard = name.startswith("*.")
        base = name[2:] if wildcard else name
        for entry in self.allowed:
            if entry.startswith("*."):  # strictly below the domain: a wildcard over it is too
                if base.endswith(entry[1:]) or (wildcard and base == entry[2:]):
                    return True
            elif _under(base, entry):
                return True
        return False

    def _reserved(self, name: str) -> bool:
        wildcard = name.startswith("*.")
        base = name[2:] if wildcard else name
        for r in self.reserved_subtrees:
            if _under(base, r) or (wildcard and _parent(r) == base):
                return True
        for h in self.reserved_hosts:
            if base == h or (wildcard and _parent(h) == base):
                return True
        return False

    def refusal(self, kind: str, value: str) -> str | None:
        """Why `value` (of kind dns, ip, email, uri) may not be issued, or None when it may."""
        if kind == "ip":
            try:
                ip = str(ipaddress.ip_address(value.strip()))
            except ValueError:
                return f"'{value}' is not an IP address"
            if ip in self.reserved_hosts:
                return f"'{ip}' is this instance's own address"
            return None if ip in self.allowed else f"'{ip}' is not an allowed address"
        if kind == "email":
            host = _host(value.rsplit("@", 1)[-1])
        elif kind == "uri":
            host = _host(urlsplit(value).hostname or "")
        else:
            host = _host(value)
        if not host:
            return f"'{value}' names no host"
        try:
            ipaddress.ip_address(host)
            return self.refusal("ip", host)
        except ValueError:
            pass
        if self._reserved(host):
            return f"'{value}' is one of this instance's own names"
        if not self._allowed_dns(host):
            return f"'{value}' is not in an allowed domain"
        return None

    def check(self, x509_props: dict[str, Any], subject: x509.Name) -> list[str]:
        """Every reason the CA must refuse this certificate (empty: it may sign)."""
        sans = x509_props.get("sans") or {}
        names: list[tuple[str, str]] = [("dns", d) for d in sans.get("dns_names", [])]
        names += [("email", e) for e in sans.get("emails", [])] + [("email", u) for u in sans.get("upns", [])]
        names += [("uri", u) for u in sans.get("uris", [])] + [("ip", a) for a in sans.get("ipAddresses", [])]
        for attr in subject:
            value = attr.value if isinstance(attr.value, str) else ""
            hostlike = _HOSTLIKE.match(value.strip()) is not None or _is_ip(value)
            # Clients fall back to the CN when there are no DNS SANs; a dotted CN is judged regardless.
            if attr.oid == NameOID.COMMON_NAME and hostlike and ("." in value or not sans.get("dns_names")):
                names.append(("dns", value))
            elif attr.oid == NameOID.COMMON_NAME and "@" in value:
                names.append(("email", value))
            elif attr.oid == NameOID.EMAIL_ADDRESS:
                names.append(("email", value))
        reasons = [r for kind, value in names if (r := self.refusal(kind, value)) is not None]
        return list(dict.fromkeys(reasons))


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip())
        return True
    except ValueError:
        return False
