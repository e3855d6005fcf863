"""SecretProviderClass files and the Azure provider's parameter set, parsed as the Azure provider does.

Two layers:
- `load_spc`/`parse_spc` read a SecretProviderClass manifest (what `kubectl apply`
  would accept: apiVersion `secrets-store.csi.x-k8s.io/v1` or `v1alpha1`, string-only
  `spec.parameters`, `spec.secretObjects`).
- `parse_parameters` reads the Mount `attributes` map (SPC parameters + pod info +
  tokens) into `MountParameters`, with the Azure provider's names, defaults and
  checks (pkg/provider/types, validate.go), so an SPC written for AKS means the same
  here. Where the Azure provider would fail late or silently, we fail early with a
  message that says what to change.

The `objects` parameter is a YAML document `array:` of YAML *strings*, each one a
KeyVaultObject. Go's yaml.v3 decodes every field of it into a Go string from the
scalar's raw text (`filePermission: 0755` stays "0755"), so we read the raw text of
each scalar too instead of letting YAML 1.1 turn it into a number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from strongroom.csi.errors import ProviderError, invalid

API_GROUP = "secrets-store.csi.x-k8s.io"
API_VERSIONS = (f"{API_GROUP}/v1", f"{API_GROUP}/v1alpha1")
KIND = "SecretProviderClass"

# Attribute keys the driver adds (kubelet volume_context with podInfoOnMount, and tokens).
POD_NAME = "csi.storage.k8s.io/pod.name"
POD_NAMESPACE = "csi.storage.k8s.io/pod.namespace"
POD_UID = "csi.storage.k8s.io/pod.uid"
SERVICE_ACCOUNT_NAME = "csi.storage.k8s.io/serviceAccount.name"
SERVICE_ACCOUNT_TOKENS = "csi.storage.k8s.io/serviceAccount.tokens"
EPHEMERAL = "csi.storage.k8s.io/ephemeral"

OBJECT_TYPES = ("secret", "key", "cert")
OBJECT_FORMATS = ("pem", "pfx")
OBJECT_ENCODINGS = ("utf-8", "base64", "hex")
OBJECT_FIELDS = (
    "objectName",
    "objectType",
    "objectAlias",
    "objectVersion",
    "objectVersionHistory",
    "objectFormat",
    "objectEncoding",
    "filePermission",
)
VAULT_NAME = re.compile(r"^[-A-Za-z0-9]+\Z")
OCTAL = re.compile(r"^[0-7]+\Z")
MAX_MODE = 0o777
# libyaml parses a mount's SecretProviderClass about 20x faster than PyYAML's pure-Python
# loader; it builds the same nodes with the same tag resolver. Invalid YAML is read
# again by the pure-Python loader, so errors keep its exact wording and positions.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)

POD_IDENTITY_REFUSED = (
    "usePodIdentity is not supported: AAD pod identity is deprecated, and Azure AD workload identity replaces it. "
    "Remove usePodIdentity, set clientID to the client ID of the identity that may read the vault, and give that "
    "identity a federated credential for the pod's service account "
    "(issuer = the cluster's OIDC issuer, subject = system:serviceaccount:<namespace>:<service account>, "
    "audience = api://AzureADTokenExchange)."
)
TOKEN_PROXY_REFUSED = (
    "useAzureTokenProxy (AKS identity binding) is not supported by this provider. Use workload identity instead: "
    "remove useAzureTokenProxy and keep clientID; the driver must request tokens for api://AzureADTokenExchange."
)


class SPCError(ProviderError):
    """The SecretProviderClass or its parameters are wrong; the message says what to change."""

    def __init__(self, message: str) -> None:
        super().__init__(invalid(message).status, message)


# ---------------------------------------------------------------------------
# KeyVaultObject
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyVaultObject:
    object_name: str
    object_type: str
    object_alias: str = ""
    object_version: str = ""
    object_version_history: int = 0
    object_format: str = ""
    object_encoding: str = ""
    file_permission: str = ""

    @property
    def file_name(self) -> str:
        """The file the object is written to: the alias if set, else the name."""
        return self.object_alias or self.object_name

    @property
    def single_version(self) -> bool:
        return self.object_version_history <= 1

    @property
    def pinned_version(self) -> str:
        """The version to fetch; "" means the latest (`latest` is the Azure provider's spelling of it)."""
        return "" if self.object_version.lower() == "latest" else self.object_version

    def mode(self, default: int) -> int:
        """File mode from `filePermission` (an octal string), else the driver's default."""
        return int(self.file_permission, 8) if self.file_permission else default

    def uid(self, index: int | None = None) -> str:
        """The ObjectVersion id: `<type>/<name>`, or `<type>/<name>/<index>` with version history."""
        base = f"{self.object_type}/{self.object_name}"
        return base if index is None else f"{base}/{index}"

    def describe(self) -> str:
        """How errors name the object (the Azure provider's wording)."""
        return f"objectType:{self.object_type}, objectName:{self.object_name}, objectVersion:{self.object_version}"


def _scalar_text(node: yaml.Node, where: str, key: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise SPCError(f"{where}: {key} must be a single value, not a list or a map")
    if node.tag.endswith(":null"):
        return ""
    return node.value.strip()


def _compose(text: str, where: str) -> yaml.Node | None:
    if _FAST_LOADER is not None:
        try:
            return yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            pass  # the pure-Python loader below says what is wrong, in the words the messages expect
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise SPCError(f"{where} is not valid YAML{at}: {problem}") from None


def _parse_object(text: str, index: int) -> KeyVaultObject:
    where = f"objects[{index}]"
    node = _compose(text, where)
    if node is None:
        raise SPCError(f"{where} is empty; each entry needs at least objectName and objectType")
    if not isinstance(node, yaml.MappingNode):
        raise SPCError(f"{where} must be a YAML map such as 'objectName: db-password' and 'objectType: secret'")
    values: dict[str, str] = {}
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
        if key in seen:
            raise SPCError(f"{where}: {key} is given twice")
        seen.add(key)
        if key in OBJECT_FIELDS:
            values[key] = _scalar_text(value_node, where, key)
    unknown = sorted(seen - set(OBJECT_FIELDS))
    name = values.get("objectName", "")
    label = f"{where} ({name})" if name else where
    if not name:
        extra = f"; it has {', '.join(sorted(seen))} (field names are case-sensitive)" if seen else ""
        raise SPCError(f"{where}: objectName is required{extra}")
    history_text = values.get("objectVersionHistory", "")
    try:
        history = int(history_text, 10) if history_text else 0
    except ValueError:
        raise SPCError(f"{label}: objectVersionHistory must be a whole number, got {history_text!r}") from None
    obj = KeyVaultObject(
        object_name=name,
        object_type=values.get("objectType", ""),
        object_alias=values.get("objectAlias", ""),
        object_version=values.get("objectVersion", ""),
        object_version_history=history,
        object_format=values.get("objectFormat", ""),
        object_encoding=values.get("objectEncoding", ""),
        file_permission=values.get("filePermission", ""),
    )
    _validate_object(obj, label, unknown)
    return obj


def _validate_object(obj: KeyVaultObject, label: str, unknown: list[str]) -> None:
    if obj.object_type not in OBJECT_TYPES:
        got = f"{obj.object_type!r}" if obj.object_type else "nothing"
        hint = f" (did you mean one of {', '.join(unknown)}?)" if unknown and not obj.object_type else ""
        raise SPCError(f"{label}: objectType must be secret, key or cert, got {got}{hint}")
    if obj.object_format:
        fmt = obj.object_format.lower()
        if fmt not in OBJECT_FORMATS:
            raise SPCError(f"{label}: invalid objectFormat {obj.object_format!r}, should be pem or pfx")
        if fmt == "pfx" and obj.object_type != "secret":
            raise SPCError(
                f"{label}: objectFormat pfx is only supported for objectType secret "
                "(read the certificate's PFX through its secret: objectType: secret, objectName: <certificate name>)"
            )
    if obj.object_encoding:
        if obj.object_type != "secret":
            raise SPCError(f"{label}: objectEncoding is only supported for objectType secret")
        if obj.object_encoding.lower() not in OBJECT_ENCODINGS:
            raise SPCError(f"{label}: invalid objectEncoding {obj.object_encoding!r}, should be utf-8, base64 or hex")
    check_file_name(obj.file_name, label)
    if obj.file_permission:
        if not OCTAL.match(obj.file_permission) or int(obj.file_permission, 8) > MAX_MODE:
            raise SPCError(
                f"{label}: filePermission must be an octal file mode between 0000 and 0777 such as \"0440\", "
                f"got {obj.file_permission!r}"
            )


def check_file_name(name: str, label: str) -> None:
    """Relative, no `..` anywhere: the rules of the Azure provider (from Kubernetes' path validation)."""
    if not name:
        raise SPCError(f"{label}: file name must not be empty")
    if name.startswith("/") or PurePosixPath(name).is_absolute() or re.match(r"^[A-Za-z]:[\\/]", name):
        raise SPCError(f"{label}: file name {name!r} must be a relative path")
    if ".." in name:
        raise SPCError(f"{label}: file name {name!r} must not contain '..'")


def parse_objects(text: str) -> list[KeyVaultObject]:
    """The `objects` parameter: `array:` followed by a list of YAML strings, one KeyVaultObject each."""
    return list(_parse_objects_cached(text.strip()))


@lru_cache(maxsize=64)
def _parse_objects_cached(text: str) -> tuple[KeyVaultObject, ...]:
    """A mount reads the same `objects` text several times (agent, provider, each rotation): parse it once.

    KeyVaultObject is frozen and a tuple cannot be changed, so the cached value is safe to share;
    errors are raised afresh each time (lru_cache keeps only results).
    """
    if not text:
        raise SPCError("objects is not set; list the vault objects to mount under parameters.objects")
    root = _compose(text, "objects")
    if not isinstance(root, yaml.MappingNode):
        raise SPCError("objects must be a YAML map with one key, array: a list of object entries")
    items: yaml.Node | None = None
    for key_node, value_node in root.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == "array":
            items = value_node
    if items is None or (isinstance(items, yaml.ScalarNode) and items.tag.endswith(":null")):
        raise SPCError("objects has no array: list; write objects as 'array:' followed by '- |' entries")
    if not isinstance(items, yaml.SequenceNode):
        raise SPCError("objects.array must be a list of entries, each written as '- |' followed by the object's fields")
    objects: list[KeyVaultObject] = []
    for i, item in enumerate(items.value):
        if not isinstance(item, yaml.ScalarNode):
            raise SPCError(
                f"objects[{i}] must be a YAML string: write each entry as '- |' followed by its fields on the next "
                "lines, as the Azure provider requires"
            )
        objects.append(_parse_object(item.value, i))
    if not objects:
        raise SPCError("objects.array is empty; list at least one object")
    files: dict[str, int] = {}
    for i, obj in enumerate(objects):
        if obj.file_name in files:
            raise SPCError(
                f"objects[{i}] ({obj.object_name}) writes the file {obj.file_name!r} that objects[{files[obj.file_name]}] "
                "also writes; give one of them a different objectAlias"
            )
        files[obj.file_name] = i
    return tuple(objects)


# ---------------------------------------------------------------------------
# Mount parameters (the attributes map)
# ---------------------------------------------------------------------------

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_bool(value: str, key: str) -> bool:
    """Go's strconv.ParseBool, which the Azure provider uses for its flags."""
    value = value.strip()
    if value == "" or value in _FALSE:
        return False
    if value in _TRUE:
        return True
    raise SPCError(f"failed to parse {key} flag: {value!r} is not true or false")


@dataclass(frozen=True)
class MountParameters:
    keyvault_name: str
    tenant_id: str
    objects: list[KeyVaultObject]
    pod_name: str
    pod_namespace: str
    client_id: str = ""
    use_vm_managed_identity: bool = False
    user_assigned_identity_id: str = ""
    cloud_name: str = ""
    cloud_env_file: str = ""
    service_account_tokens: str = ""
    service_account_name: str = ""


def _get(attributes: Mapping[str, str], key: str) -> str:
    return attributes.get(key, "").strip()


def parse_parameters(attributes: Mapping[str, str]) -> MountParameters:
    """Mount attributes -> parameters, checked in the Azure provider's order."""
    pod_name = _get(attributes, POD_NAME)
    pod_namespace = _get(attributes, POD_NAMESPACE)
    if not pod_name:
        raise SPCError(
            "pod name is not provided: the driver passes it when the CSIDriver object has podInfoOnMount: true"
        )
    if not pod_namespace:
        raise SPCError(
            "pod namespace is not provided: the driver passes it when the CSIDriver object has podInfoOnMount: true"
        )
    if parse_bool(_get(attributes, "usePodIdentity"), "usePodIdentity"):
        raise SPCError(POD_IDENTITY_REFUSED)
    use_vm = parse_bool(_get(attributes, "useVMManagedIdentity"), "useVMManagedIdentity")
    if parse_bool(_get(attributes, "useAzureTokenProxy"), "useAzureTokenProxy"):
        if use_vm:
            raise SPCError("only one identity mode can be enabled at a time: useVMManagedIdentity or useAzureTokenProxy")
        raise SPCError(TOKEN_PROXY_REFUSED)
    keyvault_name = _get(attributes, "keyvaultName")
    if not keyvault_name:
        raise SPCError("keyvaultName is not provided; set parameters.keyvaultName to the vault's name")
    if not 3 <= len(keyvault_name) <= 24:
        raise SPCError(f"Invalid vault name: {keyvault_name!r}, must be between 3 and 24 chars")
    if not VAULT_NAME.match(keyvault_name):
        raise SPCError(f"Invalid vault name: {keyvault_name!r}, must match [-a-zA-Z0-9]{{3,24}}")
    # tenantID is read first; tenantId is the deprecated spelling (Azure provider issue 857).
    tenant_id = _get(attributes, "tenantID") or _get(attributes, "tenantId")
    if not tenant_id:
        raise SPCError("tenantId is not provided; set parameters.tenantID to the directory (tenant) ID")
    return MountParameters(
        keyvault_name=keyvault_name,
        tenant_id=tenant_id,
        objects=parse_objects(_get(attributes, "objects")),
        pod_name=pod_name,
        pod_namespace=pod_namespace,
        client_id=_get(attributes, "clientID"),
        use_vm_managed_identity=use_vm,
        user_assigned_identity_id=_get(attributes, "userAssignedIdentityID"),
        cloud_name=_get(attributes, "cloudName"),
        cloud_env_file=_get(attributes, "cloudEnvFileName"),
        service_account_tokens=_get(attributes, SERVICE_ACCOUNT_TOKENS),
        service_account_name=_get(attributes, SERVICE_ACCOUNT_NAME),
    )


# ---------------------------------------------------------------------------
# SecretProviderClass manifests
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretObjectData:
    object_name: str  # the mounted file name (the alias if one is set)
    key: str


@dataclass(frozen=True)
class SecretObject:
    secret_name: str
    type: str
    data: list[SecretObjectData]
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SecretProviderClass:
    name: str
    namespace: str
    api_version: str
    provider: str
    parameters: dict[str, str]
    secret_objects: list[SecretObject] = field(default_factory=list)

    def objects(self) -> list[KeyVaultObject]:
        return parse_objects(self.parameters.get("objects", ""))


def _string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SPCError(f"{where} must be a map of strings")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(v, str):
            shown = "true/false" if isinstance(v, bool) else type(v).__name__
            raise SPCError(
                f"{where}.{k} must be a string, got {shown}; quote it (e.g. \"{str(v).lower() if isinstance(v, bool) else v}\") "
                "as Kubernetes requires"
            )
        out[str(k)] = v
    return out


def _secret_objects(value: Any) -> list[SecretObject]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SPCError("spec.secretObjects must be a list")
    out: list[SecretObject] = []
    for i, item in enumerate(value):
        where = f"spec.secretObjects[{i}]"
        if not isinstance(item, dict):
            raise SPCError(f"{where} must be a map with secretName, type and data")
        name, typ, data = item.get("secretName"), item.get("type"), item.get("data")
        if not name or not isinstance(name, str):
            raise SPCError(f"{where}.secretName is required")
        if not typ or not isinstance(typ, str):
            raise SPCError(f"{where}.type is required, e.g. Opaque or kubernetes.io/tls")
        if not data or not isinstance(data, list):
            raise SPCError(f"{where}.data is required: a list of {{objectName, key}}")
        entries = []
        for j, d in enumerate(data):
            if not isinstance(d, dict) or not d.get("objectName") or not d.get("key"):
                raise SPCError(f"{where}.data[{j}] needs objectName (the mounted file name) and key")
            entries.append(SecretObjectData(str(d["objectName"]), str(d["key"])))
        out.append(
            SecretObject(
                secret_name=name,
                type=typ,
                data=entries,
                labels=_string_map(item.get("labels"), f"{where}.labels"),
                annotations=_string_map(item.get("annotations"), f"{where}.annotations"),
            )
        )
    return out


def _from_document(doc: dict[str, Any], source: str) -> SecretProviderClass:
    api_version = doc.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise SPCError(f"{source}: apiVersion must be {API_VERSIONS[0]} (or the deprecated v1alpha1), got {api_version!r}")
    meta = doc.get("metadata") or {}
    if not isinstance(meta, dict) or not meta.get("name"):
        raise SPCError(f"{source}: metadata.name is required")
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise SPCError(f"{source}: spec is required")
    provider = spec.get("provider")
    if not provider or not isinstance(provider, str):
        raise SPCError(f"{source}: spec.provider is required, e.g. azure")
    parameters = _string_map(spec.get("parameters"), "spec.parameters")
    if not parameters:
        raise SPCError(f"{source}: spec.parameters is required and must not be empty")
    return SecretProviderClass(
        name=str(meta["name"]),
        namespace=str(meta.get("namespace") or "default"),
        api_version=api_version,
        provider=provider,
        parameters=parameters,
        secret_objects=_secret_objects(spec.get("secretObjects")),
    )


def load_documents(text: str) -> list[Any]:
    """Every document of a manifest (yaml.safe_load_all), with libyaml when it is there. Raises yaml.YAMLError."""
    if _FAST_LOADER is not None:
        try:
            return list(yaml.load_all(text, Loader=_FAST_LOADER))
        except yaml.YAMLError:
            pass  # raised again below by the pure-Python loader, with its wording
    return list(yaml.safe_load_all(text))


def parse_spc(text: str, source: str = "SecretProviderClass", name: str | None = None) -> SecretProviderClass:
    """The SecretProviderClass in a (possibly multi-document) manifest; `name` picks one of several."""
    try:
        docs = [d for d in load_documents(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark else ""
        raise SPCError(f"{source} is not valid YAML{at}") from None
    classes = [d for d in docs if isinstance(d, dict) and d.get("kind") == KIND]
    if name is not None:
        classes = [d for d in classes if isinstance(d.get("metadata"), dict) and d["metadata"].get("name") == name]
    if not classes:
        which = f" named {name!r}" if name else ""
        raise SPCError(f"{source} holds no {KIND}{which} (kind: {KIND}, apiVersion: {API_VERSIONS[0]})")
    if len(classes) > 1:
        raise SPCError(f"{source} holds {len(classes)} {KIND} objects; say which one by name")
    return _from_document(classes[0], source)


def load_spc(path: str | Path, name: str | None = None) -> SecretProviderClass:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise SPCError(f"cannot read {p}: {exc.strerror}") from None
    return parse_spc(text, str(p), name)
