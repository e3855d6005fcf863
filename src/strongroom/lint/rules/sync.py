"""Practice 5: sync to Kubernetes Secrets only when something needs a Secret (SR501, SR502)."""

from __future__ import annotations

from strongroom.lint.findings import Finding
from strongroom.lint.graph import Graph
from strongroom.lint.rules import Options
from strongroom.lint.rules.rotation import synced_secrets


def check(g: Graph, options: Options) -> list[Finding]:
    out: list[Finding] = []
    for spc, i, name in synced_secrets(g):
        path = ("spec", "secretObjects", i, "secretName")
        uses = g.uses_of(name, spc)
        if not uses:
            out.append(Finding("SR501", spc.file, spc.line(path),
                               f"{spc.describe()} syncs the Kubernetes Secret {name}, but no workload or Ingress in the "
                               "scanned files consumes it: remove this secretObjects entry (it only copies the value "
                               "into etcd).", subject=f"{spc.describe()}#{name}"))
        elif all(u.how == "volume" for u in uses):
            users = sorted({u.doc.describe() for u in uses})
            out.append(Finding("SR502", spc.file, spc.line(path),
                               f"{spc.describe()} syncs {name}, which {', '.join(users)} only mount(s) as files: mount "
                               f"the CSI volume instead and drop this secretObjects entry.",
                               subject=f"{spc.describe()}#{name}"))
    return out
