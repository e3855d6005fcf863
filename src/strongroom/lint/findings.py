"""The rule catalogue and the Finding every rule produces.

Rule ids are stable: SR0xx input problems, SR1xx-SR5xx the five practices (the hundreds
digit is the practice number). Severities follow SARIF's levels (error, warning, note).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum


class Severity(str, Enum):
    error = "error"
    warning = "warning"
    note = "note"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "note": 1}[self.value]


@dataclass(frozen=True)
class Rule:
    id: str
    practice: int  # 1-5; 0 for problems with the input itself
    severity: Severity
    title: str
    help: str
    needs_server: bool = False


PRACTICES = {
    0: "Input",
    1: "Workload identity",
    2: "Least privilege",
    3: "Auto rotation",
    4: "GitOps without secrets",
    5: "Minimal sync",
}

_R = Rule
RULES: dict[str, Rule] = {r.id: r for r in (
    _R("SR001", 0, Severity.error, "File is not valid YAML",
       "Fix the YAML syntax at the reported line; the file cannot be applied or linted as it is."),
    _R("SR002", 0, Severity.warning, "Kustomization could not be rendered",
       "Run `kubectl kustomize DIR` to see the error; the directory was linted file by file instead."),
    _R("SR003", 0, Severity.warning, "Suppression without a reason",
       "Write why the finding does not apply: `# strongroom-lint: ignore SR401 test fixture, not deployed`."),
    _R("SR101", 1, Severity.error, "SecretProviderClass uses pod identity",
       "Remove usePodIdentity; set clientID to the managed identity's client id and label the pod "
       "azure.workload.identity/use: \"true\" (workload identity)."),
    _R("SR102", 1, Severity.error, "SecretProviderClass uses the node's VM managed identity",
       "Remove useVMManagedIdentity/userAssignedIdentityID: every pod on the node could use that identity. "
       "Use workload identity: clientID in the SPC, a federated credential for the pod's service account."),
    _R("SR103", 1, Severity.error, "CSI volume passes a service principal secret (nodePublishSecretRef)",
       "Remove nodePublishSecretRef and the client-secret Secret; use workload identity (clientID in the SPC)."),
    _R("SR104", 1, Severity.error, "Pod mounts a workload identity SPC without azure.workload.identity/use",
       "Add the label azure.workload.identity/use: \"true\" to the pod template, or the webhook injects no token."),
    _R("SR105", 1, Severity.error, "Service account lacks the azure.workload.identity/client-id annotation",
       "Annotate the pod's service account with azure.workload.identity/client-id: <the SPC's clientID>."),
    _R("SR106", 1, Severity.warning, "Service account's client-id differs from the SPC's clientID",
       "Make the service account's azure.workload.identity/client-id and the SPC's clientID name the same identity."),
    _R("SR201", 2, Severity.error, "Identity holds more than read rights on the vault",
       "Replace the assignment with \"Key Vault Secrets User\" scoped to each secret the SPCs read.", True),
    _R("SR202", 2, Severity.warning, "Read role assigned vault-wide while the SPCs read only some objects",
       "Assign \"Key Vault Secrets User\" on each secret the SPCs read and delete the vault-wide assignment.", True),
    _R("SR203", 2, Severity.warning, "Role assignment unused",
       "The audit log shows no use of this assignment in the period: delete it.", True),
    _R("SR301", 3, Severity.warning, "Synced secret consumed as environment variable without a restart mechanism",
       "Environment variables do not change after rotation: add reloader.stakater.com/auto: \"true\" to the "
       "workload, run the process under `strongroom run`, or read the file from the CSI mount."),
    _R("SR302", 3, Severity.warning, "Secrets Store CSI Driver installed with rotation off",
       "Set enableSecretRotation: true in the driver's Helm values."),
    _R("SR303", 3, Severity.warning, "Rotation poll interval above the threshold",
       "Lower rotationPollInterval (the driver's default is 2m)."),
    _R("SR401", 4, Severity.error, "Kubernetes Secret with data in Git",
       "Store the value in the vault (`strongroom keyvault secret set`) and mount it through a "
       "SecretProviderClass; keep only the SPC in Git."),
    _R("SR402", 4, Severity.error, "Secret-like string in a manifest",
       "Move the value into the vault and reference it through a SecretProviderClass; rotate it, it is in Git history."),
    _R("SR403", 4, Severity.error, "String equals a current secret value in the vault",
       "This value is live: rotate the secret (`strongroom keyvault secret set`) and remove it from Git.", True),
    _R("SR501", 5, Severity.warning, "Synced secret that no workload consumes",
       "Remove the secretObjects entry: it copies a vault secret into etcd for nobody."),
    _R("SR502", 5, Severity.note, "Synced secret used only as a file mount",
       "The CSI volume already provides the file: mount it and drop the secretObjects entry."),
)}


@dataclass
class Finding:
    rule_id: str
    file: str
    line: int
    message: str
    fix: str | None = None  # an exact command, when one fixes it
    subject: str = ""  # what the finding is about (kind/namespace/name#detail): stable across edits, for baselines
    severity: Severity | None = None  # defaults to the rule's
    suppressed_by: str | None = None  # the reason of an inline suppression, or "baseline"
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity is None:
            self.severity = RULES[self.rule_id].severity

    @property
    def rule(self) -> Rule:
        return RULES[self.rule_id]

    @property
    def practice(self) -> int:
        return self.rule.practice

    def fingerprint(self) -> str:
        """Identity for baselines: rule, file and subject, not the line (lines move when files are edited)."""
        key = f"{self.rule_id}\0{self.file}\0{self.subject or self.line}"
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    def to_json(self) -> dict:
        out = {
            "ruleId": self.rule_id,
            "practice": self.practice,
            "severity": self.severity.value,  # type: ignore[union-attr]
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "fix": self.fix,
            "fingerprint": self.fingerprint(),
        }
        if self.suppressed_by:
            out["suppressed"] = self.suppressed_by
        return out
