"""Practice 3: rotation reaches the process (SR301) and the driver rotates at all, often enough (SR302, SR303)."""

from __future__ import annotations

import re

from strongroom.lint.findings import Finding
from strongroom.lint.graph import Graph, Workload, as_dict, as_list, common_prefix, dig, same_namespace
from strongroom.lint.manifests import Doc
from strongroom.lint.rules import Options, is_true

# Stakater Reloader's annotations (on the workload or its pod template).
RELOADER_FLAGS = ("reloader.stakater.com/auto", "secret.reloader.stakater.com/auto", "reloader.stakater.com/search")
RELOADER_LIST = "secret.reloader.stakater.com/reload"
DRIVER_CHART_KEY = "secrets-store-csi-driver"  # the Azure provider chart's subchart
DRIVER_VALUES = ("enableSecretRotation", "rotationPollInterval", "syncSecret")
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float | None:
    """Seconds in a Go duration ("2m", "1h30m"); None if it is not one."""
    text = text.strip()
    if not text or _GO_DURATION.sub("", text) != "":
        return None
    return sum(float(n) * _UNIT[u] for n, u in _GO_DURATION.findall(text))


def show_duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def synced_secrets(g: Graph) -> list[tuple[Doc, int, str]]:
    """(spc, index, secretName) for every secretObjects entry."""
    out = []
    for spc in g.spcs:
        for i, so in enumerate(as_list(dig(spc.data, ("spec", "secretObjects")))):
            name = as_dict(so).get("secretName")
            if name:
                out.append((spc, i, str(name)))
    return out


def syncing_spc(g: Graph, secret: str, near: Doc) -> Doc | None:
    """The SPC that syncs Secret `secret` for `near` (same namespace; the closest one in the tree)."""
    found = [spc for spc, _, name in synced_secrets(g) if name == secret and same_namespace(spc, near)]
    here = near.file.split("/")
    return max(found, key=lambda d: common_prefix(here, d.file.split("/")), default=None)


def restarts_on_change(w: Workload, secret: str) -> bool:
    ann = w.annotations
    if any(is_true(ann.get(k)) for k in RELOADER_FLAGS):
        return True
    if secret in [s.strip() for s in str(ann.get(RELOADER_LIST, "")).split(",")]:
        return True
    for c, _ in w.containers():
        argv = [str(a) for a in as_list(c.get("command")) + as_list(c.get("args"))]
        words = " ".join(argv).split()
        for i, word in enumerate(words[:-1]):
            if word.rsplit("/", 1)[-1] == "strongroom" and words[i + 1] == "run":
                return True
    return False


def check(g: Graph, options: Options) -> list[Finding]:
    out: list[Finding] = []
    for w in g.workloads:
        for use in [u for u in g.secret_uses if u.doc is w.doc and u.how in ("env", "envFrom")]:
            spc = syncing_spc(g, use.secret, w.doc)
            if spc is None or restarts_on_change(w, use.secret):
                continue
            out.append(Finding("SR301", w.doc.file, w.doc.line(use.path),
                               f"{w.doc.describe()} reads the synced secret {use.secret} (from {spc.describe()}) as "
                               "environment variables but nothing restarts it when the secret rotates: add the "
                               "annotation reloader.stakater.com/auto: \"true\", run the process under "
                               "`strongroom run`, or read the file from the CSI mount.",
                               subject=f"{w.doc.describe()}#{use.secret}"))
    for d in g.other:
        data = d.data
        prefix: tuple = ()
        if isinstance(data.get(DRIVER_CHART_KEY), dict):
            prefix, data = (DRIVER_CHART_KEY,), data[DRIVER_CHART_KEY]
        elif not any(k in data for k in DRIVER_VALUES):
            continue
        if not is_true(data.get("enableSecretRotation")):
            where = prefix + ("enableSecretRotation",) if "enableSecretRotation" in data else prefix
            out.append(Finding("SR302", d.file, d.line(where),
                               "The Secrets Store CSI Driver values leave enableSecretRotation off (the chart's "
                               "default): mounted secrets never change after a rotation. Set enableSecretRotation: true.",
                               subject="enableSecretRotation"))
        interval = data.get("rotationPollInterval")
        seconds = go_duration(str(interval)) if interval is not None else None
        if seconds is not None and seconds > options.max_rotation_interval:
            out.append(Finding("SR303", d.file, d.line(prefix + ("rotationPollInterval",)),
                               f"rotationPollInterval {interval} is above {show_duration(options.max_rotation_interval)}: a rotated "
                               "secret stays stale that long in every pod. Lower it (the driver's default is 2m).",
                               subject="rotationPollInterval"))
    return out
