"""The linter keeps DESIGN.md's house rules: it imports neither `cli` nor `server` nor `storage`.

The CLI hands it a client (server checks) and an audit lookup; the value-match domain logic lives
in `keyvault/`, the HTTP side in `server/lint_api.py`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import strongroom

SRC = Path(strongroom.__file__).parent
FORBIDDEN = ("strongroom.cli", "strongroom.server", "strongroom.storage")


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_lint_and_value_match_import_inward_only():
    files = [*(SRC / "lint").rglob("*.py"), SRC / "keyvault" / "value_match.py"]
    bad = {f"{f.relative_to(SRC)}: {m}" for f in files for m in imports(f) if m.startswith(FORBIDDEN)}
    assert bad == set()
