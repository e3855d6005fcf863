"""The house rules of DESIGN.md, read from the source: which module may import which.

Every module under src/strongroom is parsed with `ast` (nothing is imported, so
the test takes well under a second) and its imports are checked against:

- one way down: only storage/, barrier/, audit/ and the composition root
  (server/runtime.py, server/app.py, cli/) import `strongroom.storage` or reach
  through an attribute named `storage`; everything else goes through the
  barrier's `SealedStore`;
- identity/ and issuer/ do not import the Key Vault domain (`strongroom.keyvault`);
- nothing imports `strongroom.cli` or `strongroom.server` but cli/ and server/
  themselves (testing/ starts them as a subprocess);
- no import cycle between modules.

Imports inside functions count too: a lazy import still ties the two modules
together (and still fails at runtime if the cycle bites in another order). Only
`if TYPE_CHECKING:` blocks are left out of the cycle check, since they never
run; they do count for the layering rules.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "strongroom"

# Modules that may hold a `Storage` (and so may import strongroom.storage or use `.storage`).
STORAGE_HOLDERS = ("strongroom.storage", "strongroom.barrier", "strongroom.audit", "strongroom.cli",
                   "strongroom.server.runtime", "strongroom.server.app")
# `.storage` attributes that are not a Storage: `Settings.storage` is the storage URL (a str).
STORAGE_ATTRIBUTE_ALLOWED = {"settings.storage"}


@dataclass(frozen=True)
class Import:
    target: str  # the module (or package) imported, e.g. strongroom.storage.guard
    line: int
    type_checking: bool  # under `if TYPE_CHECKING:`: never executed


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    is_package: bool

    @property
    def rel(self) -> str:
        return str(self.path.relative_to(SRC))


def _modules() -> dict[str, Module]:
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join(parts)
        found[name] = Module(name, path, ast.parse(path.read_text(), str(path)), is_package)
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: Module) -> list[Import]:
    """Every strongroom module `module` imports, at any depth (functions included)."""
    out: list[Import] = []

    def visit(node: ast.AST, type_checking: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_checking)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append(Import(alias.name, node.lineno, type_checking))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                # `from pkg import sub` imports the submodule; `from pkg import Name` the package itself
                out.append(Import(sub if sub in MODULES else base, node.lineno, type_checking))
        for child in ast.iter_child_nodes(node):
            visit(child, type_checking)

    visit(module.tree, False)
    return [i for i in out if i.target == PACKAGE or i.target.startswith(PACKAGE + ".")]


def _within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def storage_violations() -> list[str]:
    found = []
    for m in MODULES.values():
        if _within(m.name, *STORAGE_HOLDERS):
            continue
        for i in imports_of(m):
            if _within(i.target, "strongroom.storage"):
                found.append(f"{m.rel}:{i.line} imports {i.target}")
        for node in ast.walk(m.tree):
            if isinstance(node, ast.Attribute) and node.attr == "storage" and _dotted(node) not in STORAGE_ATTRIBUTE_ALLOWED:
                found.append(f"{m.rel}:{node.lineno} reaches through {_dotted(node)}")
    return list(dict.fromkeys(found))  # `from x import A, B` is one violation, not two


def keyvault_violations() -> list[str]:
    return [f"{m.rel}:{i.line} imports {i.target}"
            for m in MODULES.values() if _within(m.name, "strongroom.identity", "strongroom.issuer")
            for i in imports_of(m) if _within(i.target, "strongroom.keyvault")]


def outer_layer_violations() -> list[str]:
    found = []
    for m in MODULES.values():
        for i in imports_of(m):
            for outer in ("strongroom.cli", "strongroom.server"):
                if _within(i.target, outer) and not _within(m.name, "strongroom.cli", "strongroom.server"):
                    found.append(f"{m.rel}:{i.line} imports {i.target}")
    return found


def import_graph() -> dict[str, set[str]]:
    return {m.name: {i.target for i in imports_of(m) if not i.type_checking and i.target in MODULES
                     and i.target != m.name and i.target != PACKAGE}
            for m in MODULES.values()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        # iterative DFS: (node, iterator over its successors)
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_only_the_barrier_and_the_composition_root_touch_storage():
    assert storage_violations() == []


def test_identity_and_issuer_do_not_import_keyvault():
    assert keyvault_violations() == []


def test_nothing_imports_cli_or_server():
    assert outer_layer_violations() == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


# -- the checker itself -----------------------------------------------------------


def test_cycle_finder_finds_a_cycle_and_only_the_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize("source, expected", [
    ("from strongroom.storage import Storage", ["strongroom.storage"]),
    ("from strongroom.storage import guard", ["strongroom.storage.guard"]),
    ("def f():\n    import strongroom.cli.main", ["strongroom.cli.main"]),
    ("from . import envelope", ["strongroom.barrier.envelope"]),
    ("import json", []),
])
def test_imports_are_read_from_every_depth(source, expected):
    m = Module("strongroom.barrier.x", SRC / "strongroom/barrier/x.py", ast.parse(source), False)
    assert [i.target for i in imports_of(m)] == expected


# -- one error tree ----------------------------------------------------------------


def keyvault_error_violations(modules: dict[str, Module] | None = None) -> list[str]:
    """Outside keyvault/, nothing raises or builds a KeyVaultError, nor imports keyvault/errors.py (whose helpers build them).

    The other layers raise `strongroom.errors` classes (ServiceError and its plane-neutral
    subclasses); the plane serving the request picks the shape. Catching a domain refusal
    is `except ServiceError`.
    """
    found = []
    for m in (modules or MODULES).values():
        if _within(m.name, "strongroom.keyvault"):
            continue
        for i in imports_of(m):
            if i.target == "strongroom.keyvault.errors":
                found.append(f"{m.rel}:{i.line} imports strongroom.keyvault.errors")
        raised = set()
        for node in ast.walk(m.tree):  # breadth first: a raise is seen before the call it raises
            if isinstance(node, ast.Raise) and node.exc is not None:
                raised.add(id(node.exc))
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if _dotted(target).rsplit(".", 1)[-1] == "KeyVaultError":
                    found.append(f"{m.rel}:{node.lineno} raises KeyVaultError")
            elif (isinstance(node, ast.Call) and id(node) not in raised
                  and _dotted(node.func).rsplit(".", 1)[-1] == "KeyVaultError"):
                found.append(f"{m.rel}:{node.lineno} builds a KeyVaultError")
    return list(dict.fromkeys(found))


def test_only_keyvault_raises_keyvault_errors():
    assert keyvault_error_violations() == []


@pytest.mark.parametrize("source, expected", [
    ("from strongroom.keyvault.errors import KeyVaultError", ["imports strongroom.keyvault.errors"]),
    ("from strongroom.keyvault import errors", ["imports strongroom.keyvault.errors"]),
    ("def f(E):\n    raise E.KeyVaultError(400, 'x', 'y')", ["raises KeyVaultError"]),
    ("def f(KeyVaultError):\n    return KeyVaultError(400, 'x', 'y')", ["builds a KeyVaultError"]),
    ("from strongroom.errors import BadRequest\nraise BadRequest('BadParameter', 'y')", []),
])
def test_the_error_tree_check_sees_each_way_in(source, expected):
    m = Module("strongroom.server.x", SRC / "strongroom/server/x.py", ast.parse(source), False)
    assert [v.split(" ", 1)[1] for v in keyvault_error_violations({m.name: m})] == expected
