"""Practice 1: workload identity, not pod identity, node identity or client secrets (SR101-SR106)."""

from __future__ import annotations

from strongroom.lint.findings import Finding
from strongroom.lint.graph import WI_CLIENT_ID, WI_USE_LABEL, Graph, as_dict, spc_parameters
from strongroom.lint.rules import Options, is_true


def check(g: Graph, options: Options) -> list[Finding]:
    out: list[Finding] = []
    for spc in g.spcs:
        params = spc_parameters(spc)
        if is_true(params.get("usePodIdentity")):
            out.append(Finding("SR101", spc.file, spc.line(("spec", "parameters", "usePodIdentity")),
                               f"{spc.describe()} sets usePodIdentity: \"true\" (AAD Pod Identity is deprecated); "
                               "set clientID to a managed identity's client id and use workload identity instead.",
                               subject=spc.describe()))
        if is_true(params.get("useVMManagedIdentity")):
            out.append(Finding("SR102", spc.file, spc.line(("spec", "parameters", "useVMManagedIdentity")),
                               f"{spc.describe()} sets useVMManagedIdentity: \"true\": every pod on the node can use "
                               "that identity; set clientID and use workload identity instead.",
                               subject=spc.describe()))
    for w in g.workloads:
        for vol, path in w.csi_volumes():
            if as_dict(vol.get("csi")).get("nodePublishSecretRef"):
                out.append(Finding("SR103", w.doc.file, w.doc.line(path + ("csi", "nodePublishSecretRef")),
                                   f"{w.doc.describe()} volume {vol.get('name', '')!s} passes a service principal's "
                                   "client secret (nodePublishSecretRef); remove it and the Secret, and use workload "
                                   "identity (clientID in the SecretProviderClass).",
                                   subject=f"{w.doc.describe()}#{vol.get('name', '')}"))
        for spc, _path in g.mounts(w):
            client_id = spc_parameters(spc).get("clientID")
            if not client_id:
                continue
            if not is_true(w.pod_labels.get(WI_USE_LABEL)):
                out.append(Finding("SR104", w.doc.file, w.doc.line(w.template + ("metadata", "labels")),
                                   f"{w.doc.describe()} mounts {spc.describe()} (clientID {client_id}) but its pod "
                                   f"template lacks the label {WI_USE_LABEL}: \"true\"; without it the webhook "
                                   "injects no token and the mount fails. Add the label.",
                                   subject=f"{w.doc.describe()}#{spc.name}"))
            sa = g.service_account(w.service_account, w.doc)
            if sa is None:
                continue  # not in the scanned files: nothing to say about it
            annotated = as_dict(sa.metadata.get("annotations")).get(WI_CLIENT_ID)
            if not annotated:
                out.append(Finding("SR105", sa.file, sa.line(("metadata",)),
                                   f"{sa.describe()} (used by {w.doc.describe()}, which mounts {spc.describe()}) "
                                   f"lacks the annotation {WI_CLIENT_ID}: {client_id}; add it.",
                                   subject=f"{sa.describe()}#{spc.name}"))
            elif str(annotated) != str(client_id):
                out.append(Finding("SR106", sa.file, sa.line(("metadata", "annotations", WI_CLIENT_ID)),
                                   f"{sa.describe()} names client id {annotated} but {spc.describe()} (mounted by "
                                   f"{w.doc.describe()}) names {client_id}; make them the same identity.",
                                   subject=f"{sa.describe()}#{spc.name}"))
    return out
