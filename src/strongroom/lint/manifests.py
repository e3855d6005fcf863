"""Reading what the linter checks: YAML files, directories, Kustomize roots, Helm values.

Every document keeps its YAML node tree so a rule can name the line of any field
(`Doc.line(path)`), which PyYAML's composer records as marks. Broken YAML becomes an
SR001 finding with the parser's line, never a traceback. Kustomize roots are rendered
with `kubectl kustomize` when kubectl is on PATH; rendered objects are located back in
the source file that declares them (same kind, name contained in the rendered name).
Helm chart templates (Go templates, not YAML) are skipped; a chart's values files are read.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from strongroom.lint.findings import Finding

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
YAML_SUFFIXES = (".yaml", ".yml")
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZE_TIMEOUT = 60.0
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".terraform"}
MAX_FILE_BYTES = 5 * 1024 * 1024  # a manifest is kilobytes; larger files are data, not configuration
MAX_NODES = 100_000  # per file, after alias expansion: a "billion laughs" file is a finding, not a hang
MAX_DEPTH = 100

Path_ = tuple  # a path into a document: ("spec", "template", "spec", "volumes", 0, "csi")


@dataclass
class Doc:
    """One YAML document: its data as plain Python, and where each field is in its file."""

    file: str
    start_line: int
    data: Any
    lines: dict[Path_, int]
    strings: list[tuple[str, int, Path_]]  # every string scalar: value, line, path
    rendered: bool = False  # produced by kustomize (lines point into the source that declares it)

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", "")) if isinstance(self.data, dict) else ""

    @property
    def api_version(self) -> str:
        return str(self.data.get("apiVersion", "")) if isinstance(self.data, dict) else ""

    @property
    def metadata(self) -> dict:
        md = self.data.get("metadata") if isinstance(self.data, dict) else None
        return md if isinstance(md, dict) else {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str | None:
        ns = self.metadata.get("namespace")
        return str(ns) if ns else None

    def line(self, path: Path_ = ()) -> int:
        """The line of `path`, or of its nearest ancestor that exists in the file."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.start_line

    def describe(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name}"


@dataclass
class Loaded:
    docs: list[Doc] = field(default_factory=list)  # objects the rules see (rendered where kustomize ran)
    raw_docs: list[Doc] = field(default_factory=list)  # every document as written (for string checks)
    findings: list[Finding] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # file -> text (suppression comments)
    notes: list[str] = field(default_factory=list)  # about the environment, not the files (stderr)


_BOOL_TRUE = {"true", "yes", "on", "y"}


def _scalar(node: yaml.ScalarNode) -> Any:
    tag = node.tag.rsplit(":", 1)[-1]
    v = node.value
    if tag == "str":
        return v
    if tag == "bool":
        return v.lower() in _BOOL_TRUE
    if tag == "null":
        return None
    if tag == "int":
        try:
            return int(v.replace("_", ""), 0)
        except ValueError:
            return v
    if tag == "float":
        try:
            return float(v)
        except ValueError:
            return v
    return v


class TooBig(Exception):
    pass


def _convert(node: yaml.Node, path: Path_, lines: dict[Path_, int], strings: list, budget: list[int],
             depth: int = 0) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise TooBig(f"more than {MAX_NODES} YAML nodes once aliases are expanded")
    if depth > MAX_DEPTH:
        raise TooBig(f"nested deeper than {MAX_DEPTH} levels")
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        value = _scalar(node)
        if isinstance(value, str):
            strings.append((value, node.start_mark.line + 1, path))
        return value
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), lines, strings, budget, depth + 1) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k.start_mark.line)
            out[key] = _convert(v, path + (key,), lines, strings, budget, depth + 1)
            lines[path + (key,)] = k.start_mark.line + 1  # the key's line, not the value's
        return out
    return None


def parse_text(text: str, file: str, rendered: bool = False) -> tuple[list[Doc], list[Finding]]:
    """All documents of a (multi-document) YAML text; a syntax error ends it with an SR001 finding."""
    docs: list[Doc] = []
    budget = [MAX_NODES]
    node: yaml.Node | None = None
    try:
        for node in yaml.compose_all(text, Loader=_LOADER):
            if node is None:
                continue
            lines: dict[Path_, int] = {}
            strings: list = []
            data = _convert(node, (), lines, strings, budget)
            docs.append(Doc(file, node.start_mark.line + 1, data, lines, strings, rendered))
    except TooBig as exc:
        line = node.start_mark.line + 1 if node is not None else 1
        return docs, [Finding("SR001", file, line, f"not linted: the document is {exc}", subject=f"yaml#{exc}")]
    except RecursionError:  # the composer itself on pathological nesting
        return docs, [Finding("SR001", file, 1, "not linted: the YAML is nested too deeply", subject="yaml#depth")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return docs, [Finding("SR001", file, line, f"YAML syntax error: {problem}", subject=f"yaml#{problem}")]
    return docs, []


def _is_kustomize_root(d: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (d / name).is_file():
            return d / name
    return None


def discover(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(YAML files, kustomize root dirs) under `paths`, sorted; chart templates and VCS dirs skipped."""
    files: list[Path] = []
    roots: list[Path] = []
    for p in paths:
        if p.is_file():
            files.append(p)
            continue
        for dirpath, dirnames, filenames in os.walk(p):
            d = Path(dirpath)
            dirnames[:] = sorted(n for n in dirnames if n not in SKIP_DIRS)
            if (d / "Chart.yaml").is_file() and "templates" in dirnames:
                dirnames.remove("templates")  # Go templates: helm renders them, not a YAML parser
            if _is_kustomize_root(d):
                roots.append(d)
            files.extend(d / n for n in sorted(filenames) if n.endswith(YAML_SUFFIXES) and n != "Chart.yaml")
    return files, roots


def display_path(p: Path, base: Path) -> str:
    """`p` relative to `base` when inside it (as findings and baselines name files), else as given."""
    rel = os.path.relpath(os.path.abspath(p), os.path.abspath(base))
    return Path(rel).as_posix() if not rel.startswith("..") else p.as_posix()


def kustomize(root: Path) -> tuple[str | None, str]:
    """`kubectl kustomize root`: (rendered YAML, error text)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None, "kubectl is not on PATH"
    try:
        proc = subprocess.run([kubectl, "kustomize", str(root)], capture_output=True, text=True,
                              timeout=KUSTOMIZE_TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    if proc.returncode != 0:
        text = proc.stderr.strip()
        m = re.search(r'err="(.*)"\s*$', text)  # klog's structured line: keep the error itself
        return None, (m.group(1) if m else (text.splitlines() or ["kubectl kustomize failed"])[-1])[:400]
    return proc.stdout, ""


def _owned_by(file: Path, roots: list[Path]) -> Path | None:
    """The nearest kustomize root at or above `file`'s directory."""
    best: Path | None = None
    for r in roots:
        try:
            file.resolve().relative_to(r.resolve())
        except ValueError:
            continue
        if best is None or len(r.parts) > len(best.parts):
            best = r
    return best


def _locate(rendered: Doc, candidates: list[Doc]) -> Doc | None:
    same_kind = [d for d in candidates if d.kind == rendered.kind and d.name]
    for d in same_kind:
        if d.name == rendered.name:
            return d
    inside = [d for d in same_kind if d.name in rendered.name]
    return max(inside, key=lambda d: len(d.name)) if inside else None


def load(paths: list[Path], base: Path | None = None, use_kustomize: bool = True) -> Loaded:
    base = base or Path.cwd()
    out = Loaded()
    files, roots = discover(paths)
    if not use_kustomize:
        roots = []
    elif roots and shutil.which("kubectl") is None:
        out.notes.append(f"kubectl is not on PATH: {len(roots)} Kustomize root(s) linted file by file, unrendered")
        roots = []
    by_root: dict[Path, list[Doc]] = {}
    for f in files:
        shown = display_path(f, base)
        try:
            if f.stat().st_size > MAX_FILE_BYTES:
                out.findings.append(Finding("SR001", shown, 1, f"not linted: larger than {MAX_FILE_BYTES} bytes",
                                            subject="size"))
                continue
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            out.findings.append(Finding("SR001", shown, 1, f"cannot read the file: {type(exc).__name__}", subject="read"))
            continue
        out.texts[shown] = text
        docs, problems = parse_text(text, shown)
        out.findings.extend(problems)
        out.raw_docs.extend(docs)
        root = _owned_by(f, roots)
        if root is None:
            out.docs.extend(docs)
        else:
            by_root.setdefault(root, []).extend(docs)
    for root in roots:
        owned = by_root.get(root, [])
        # a root inside another root's tree is a base of it or a sibling overlay: render each on its own
        rendered, error = kustomize(root)
        if rendered is None:
            kfile = _is_kustomize_root(root)
            assert kfile is not None
            out.findings.append(Finding("SR002", display_path(kfile, base), 1,
                                        f"kustomize could not render {display_path(root, base)}: {error}",
                                        subject=f"kustomize#{display_path(root, base)}"))
            out.docs.extend(owned)
            continue
        docs, _ = parse_text(rendered, display_path(root, base), rendered=True)
        for d in docs:
            src = _locate(d, owned) or _locate(d, out.raw_docs)
            if src is not None:
                d.file, d.start_line, d.lines = src.file, src.start_line, src.lines  # paths kustomize added fall back to ancestors
            else:
                kfile = _is_kustomize_root(root)
                d.file, d.start_line, d.lines = display_path(kfile, base), 1, {}  # type: ignore[arg-type]
            out.docs.append(d)
    return out
