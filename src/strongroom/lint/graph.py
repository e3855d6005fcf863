"""The relations between objects that single-object linters do not see.

Which workload mounts which SecretProviderClass (a CSI volume naming it), which service
account it runs as, which Secrets it consumes and how (env, envFrom, volume, image pull,
Ingress tls), and which Secrets an SPC syncs (`secretObjects`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strongroom.lint.manifests import Doc, Path_

CSI_DRIVER = "secrets-store.csi.k8s.io"
SPC_KIND = "SecretProviderClass"
WI_USE_LABEL = "azure.workload.identity/use"
WI_CLIENT_ID = "azure.workload.identity/client-id"

# Where each workload kind keeps its pod template.
POD_TEMPLATE: dict[str, Path_] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def dig(data: Any, path: Path_) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(data, list) or part >= len(data):
                return None
        elif not isinstance(data, dict):
            return None
        data = data[part] if isinstance(part, int) else data.get(part)
    return data


def as_dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def as_list(v: Any) -> list:
    return v if isinstance(v, list) else []


@dataclass
class SecretUse:
    """A workload (or Ingress) consuming a Kubernetes Secret."""

    secret: str
    how: str  # "env", "envFrom", "volume", "imagePullSecret", "ingressTls"
    doc: Doc
    path: Path_


@dataclass
class Workload:
    doc: Doc
    template: Path_  # path of the pod template (metadata + spec)

    @property
    def pod_spec(self) -> dict:
        return as_dict(dig(self.doc.data, self.template + ("spec",)))

    @property
    def pod_labels(self) -> dict:
        return as_dict(dig(self.doc.data, self.template + ("metadata", "labels")))

    @property
    def annotations(self) -> dict:
        """Workload and pod template annotations together (Reloader reads the workload's)."""
        return {**as_dict(self.doc.metadata.get("annotations")),
                **as_dict(dig(self.doc.data, self.template + ("metadata", "annotations")))}

    @property
    def service_account(self) -> str:
        spec = self.pod_spec
        return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")

    def containers(self) -> list[tuple[dict, Path_]]:
        out = []
        for group in ("initContainers", "containers"):
            for i, c in enumerate(as_list(self.pod_spec.get(group))):
                if isinstance(c, dict):
                    out.append((c, self.template + ("spec", group, i)))
        return out

    def csi_volumes(self) -> list[tuple[dict, Path_]]:
        """CSI volumes of the Secrets Store driver: (volume, path)."""
        out = []
        for i, v in enumerate(as_list(self.pod_spec.get("volumes"))):
            csi = as_dict(as_dict(v).get("csi"))
            if csi.get("driver") == CSI_DRIVER:
                out.append((as_dict(v), self.template + ("spec", "volumes", i)))
        return out


def _ns_match(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


def same_namespace(a: Doc, b: Doc) -> bool:
    return _ns_match(a.namespace, b.namespace)


def common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):  # the lists differ in length; only their common prefix counts
        if x != y:
            break
        n += 1
    return n


@dataclass
class Graph:
    spcs: list[Doc] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)
    service_accounts: list[Doc] = field(default_factory=list)
    secrets: list[Doc] = field(default_factory=list)
    secret_uses: list[SecretUse] = field(default_factory=list)
    other: list[Doc] = field(default_factory=list)  # Helm values and the like: no apiVersion/kind
    _by_name: dict[tuple[str, str], list[Doc]] = field(default_factory=dict)  # (kind, name) -> docs

    def index(self) -> None:
        for d in self.spcs + self.service_accounts:
            self._by_name.setdefault((d.kind, d.name), []).append(d)

    def _find(self, kind: str, name: str, near: Doc) -> Doc | None:
        """The object `near` refers to: same name and namespace, and of several (one repository often holds
        several environments with the same names), the one closest to `near` in the directory tree."""
        found = [d for d in self._by_name.get((kind, name), ()) if same_namespace(d, near)]
        if len(found) <= 1:
            return found[0] if found else None
        here = near.file.split("/")
        return max(found, key=lambda d: common_prefix(here, d.file.split("/")))

    def spc(self, name: str, near: Doc) -> Doc | None:
        return self._find(SPC_KIND, name, near)

    def service_account(self, name: str, near: Doc) -> Doc | None:
        return self._find("ServiceAccount", name, near)

    def mounts(self, workload: Workload) -> list[tuple[Doc, Path_]]:
        """SPCs the workload mounts, with the path of the CSI volume."""
        out = []
        for vol, path in workload.csi_volumes():
            name = as_dict(as_dict(vol.get("csi")).get("volumeAttributes")).get("secretProviderClass")
            spc = self.spc(str(name), workload.doc) if name else None
            if spc is not None:
                out.append((spc, path))
        return out

    def uses_of(self, secret: str, near: Doc) -> list[SecretUse]:
        """Uses of Secret `secret` in `near`'s namespace, in the same directory tree as `near` when there is one."""
        uses = [u for u in self.secret_uses if u.secret == secret and same_namespace(u.doc, near)]
        here = near.file.split("/")
        best = max((common_prefix(here, u.doc.file.split("/")) for u in uses), default=0)
        return [u for u in uses if common_prefix(here, u.doc.file.split("/")) == best]


def _uses(w: Workload) -> list[SecretUse]:
    out: list[SecretUse] = []
    doc = w.doc
    for c, cpath in w.containers():
        for i, e in enumerate(as_list(c.get("env"))):
            ref = as_dict(as_dict(as_dict(e).get("valueFrom")).get("secretKeyRef"))
            if ref.get("name"):
                out.append(SecretUse(str(ref["name"]), "env", doc, cpath + ("env", i)))
        for i, e in enumerate(as_list(c.get("envFrom"))):
            ref = as_dict(as_dict(e).get("secretRef"))
            if ref.get("name"):
                out.append(SecretUse(str(ref["name"]), "envFrom", doc, cpath + ("envFrom", i)))
    spec = w.pod_spec
    for i, v in enumerate(as_list(spec.get("volumes"))):
        v = as_dict(v)
        vpath = w.template + ("spec", "volumes", i)
        name = as_dict(v.get("secret")).get("secretName")
        if name:
            out.append(SecretUse(str(name), "volume", doc, vpath))
        for j, src in enumerate(as_list(as_dict(v.get("projected")).get("sources"))):
            name = as_dict(as_dict(src).get("secret")).get("name")
            if name:
                out.append(SecretUse(str(name), "volume", doc, vpath + ("projected", "sources", j)))
    for i, ref in enumerate(as_list(spec.get("imagePullSecrets"))):
        if as_dict(ref).get("name"):
            out.append(SecretUse(str(ref["name"]), "imagePullSecret", doc, w.template + ("spec", "imagePullSecrets", i)))
    return out


def build(docs: list[Doc]) -> Graph:
    g = Graph()
    for d in docs:
        kind = d.kind
        if not isinstance(d.data, dict):
            continue
        if not kind:
            g.other.append(d)
        elif kind == SPC_KIND:
            g.spcs.append(d)
        elif kind == "ServiceAccount":
            g.service_accounts.append(d)
        elif kind == "Secret":
            g.secrets.append(d)
        elif kind in POD_TEMPLATE:
            w = Workload(d, POD_TEMPLATE[kind])
            g.workloads.append(w)
            g.secret_uses.extend(_uses(w))
        elif kind == "Ingress":
            for i, t in enumerate(as_list(as_dict(d.data.get("spec")).get("tls"))):
                if as_dict(t).get("secretName"):
                    g.secret_uses.append(SecretUse(str(t["secretName"]), "ingressTls", d, ("spec", "tls", i)))
        # other kinds are skipped: no rule reads them
    g.index()
    return g


def spc_parameters(spc: Doc) -> dict:
    return as_dict(dig(spc.data, ("spec", "parameters")))


def spc_objects(spc: Doc) -> list[tuple[str, str]]:
    """(objectName, objectType) of the vault objects an SPC reads ([] if its objects parameter does not parse)."""
    from strongroom.csi.spc import SPCError, parse_objects

    text = spc_parameters(spc).get("objects")
    if not isinstance(text, str):
        return []
    try:
        return [(o.object_name, o.object_type) for o in parse_objects(text)]
    except (SPCError, ValueError):
        return []
