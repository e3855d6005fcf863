"""The identity side of a server process, wired once: token service, federation, local cluster, MSI endpoint."""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.barrier import SealedStore
from strongroom.identity.directory import Directory
from strongroom.identity.endpoint import TokenService
from strongroom.identity.fic import FederatedCredentials
from strongroom.identity.msi import load_header
from strongroom.identity.oidc import IssuerKeys
from strongroom.identity.tokens import TokenIssuer, TokenVerifier
from strongroom.issuer.cluster import LOCAL, Cluster
from strongroom.settings import Settings

GRAPH_AUDIENCES = ["https://graph.microsoft.com", "https://graph.microsoft.com/", "00000003-0000-0000-c000-000000000000"]


def graph_audiences(settings: Settings) -> list[str]:
    """Graph's audiences, plus this instance's own URL: the Microsoft Graph resource id of its cloud metadata,
    which the real `az` asks tokens for (no other verifier accepts it, so such a token opens nothing else)."""
    return GRAPH_AUDIENCES + [settings.authority, settings.authority + "/"]


def local_cluster_issuer(settings: Settings) -> str:
    """`https://localhost:<port>/clusters/local`, as `az aks show --query oidcIssuerProfile.issuerUrl` prints a cluster's."""
    return f"{settings.authority}/clusters/{LOCAL}"


def issuer_ca_files(settings: Settings) -> list[str]:
    """CAs trusted for federated issuers besides the system's: this instance's own (its local cluster) and configured ones."""
    own = settings.state_dir / "ca.pem"
    files = [str(own)] if not settings.insecure_http and own.exists() else []
    return files + list(settings.issuer_ca_files)


@dataclass
class IdentityServices:
    fics: FederatedCredentials
    tokens: TokenService
    issuer_keys: IssuerKeys
    cluster: Cluster
    graph_tokens: TokenVerifier
    msi_header: str | None

    def close(self) -> None:
        self.issuer_keys.close()


def build_identity(
    settings: Settings, store: SealedStore, directory: Directory, issuer: TokenIssuer, resources: list[str]
) -> IdentityServices:
    fics = FederatedCredentials(store)
    issuer_keys = IssuerKeys(issuer_ca_files(settings))
    graph = graph_audiences(settings)
    return IdentityServices(
        fics=fics,
        tokens=TokenService(directory, fics, issuer, issuer_keys, resources + graph),
        issuer_keys=issuer_keys,
        cluster=Cluster(store, LOCAL, local_cluster_issuer(settings)),
        graph_tokens=TokenVerifier(issuer.keys, issuer.issuer, issuer.tenant_id, graph),
        msi_header=load_header(settings.state_dir),
    )
