"""az-style output: `-o json|jsonc|table|tsv|yaml|none` and `--query` (JMESPath)."""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from enum import Enum
from typing import Annotated, Any

import typer


class OutputFormat(str, Enum):
    json = "json"
    jsonc = "jsonc"
    table = "table"
    tsv = "tsv"
    yaml = "yaml"
    none = "none"


OutputOpt = Annotated[OutputFormat, typer.Option("--output", "-o", help="Output format.")]
def _check_query(query: str | None) -> str | None:
    """Reject a bad JMESPath before the command runs, so a write is not done and then misreported."""
    if query:
        import jmespath
        from jmespath.exceptions import JMESPathError

        from strongroom.cli.client import CLIError

        try:
            jmespath.compile(query)
        except JMESPathError:
            raise CLIError(f"argument --query: invalid jmespath_type value: '{query}'", "InvalidArgumentValue") from None
    return query


QueryOpt = Annotated[
    str | None, typer.Option("--query", help="JMESPath query string (as in az).", callback=_check_query)
]


def _scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def _rows(data: Any) -> list[dict[str, Any]]:
    items = data if isinstance(data, list) else [data]
    return [i if isinstance(i, dict) else {"Result": i} for i in items]


def _tsv_cell(value: Any) -> str:
    """One tsv column as az writes it: a list is its length, an object is blank, null is None."""
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, dict):
        return ""
    return value if isinstance(value, str) else str(value)


def _tsv_row(item: Any) -> str:
    if isinstance(item, OrderedDict):  # built by --query: the query's column order
        values = list(item.values())
    elif isinstance(item, dict):  # straight from the API: columns sorted by key, as az does
        values = [v for _, v in sorted(item.items())]
    elif isinstance(item, list):
        values = item
    elif isinstance(item, bool):
        return str(item).lower()
    else:
        return _tsv_cell(item)
    return "\t".join(_tsv_cell(v) for v in values)


def emit(data: Any, output: OutputFormat = OutputFormat.json, query: str | None = None) -> None:
    """Print a command's result the way az would."""
    if query:
        import jmespath

        # As az: objects the query builds keep the query's key order (it matters for tsv).
        data = jmespath.search(query, data, options=jmespath.Options(dict_cls=OrderedDict))
    if output is OutputFormat.none or data is None and output is not OutputFormat.json:
        return
    if output in (OutputFormat.json, OutputFormat.jsonc):
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    elif output is OutputFormat.yaml:
        import yaml

        plain = json.loads(json.dumps(data))  # safe_dump cannot represent OrderedDict
        sys.stdout.write(yaml.safe_dump(plain, default_flow_style=False, allow_unicode=True))
    elif output is OutputFormat.tsv:
        for item in data if isinstance(data, list) else [data]:
            sys.stdout.write(_tsv_row(item) + "\n")
    else:
        from rich.console import Console
        from rich.table import Table

        rows = _rows(data)
        columns: list[str] = []
        for row in rows:
            for k, v in row.items():
                if _scalar(v) and k not in columns:
                    columns.append(k)
        table = Table(box=None, header_style="bold", pad_edge=False)
        for c in columns:
            table.add_column(c[:1].upper() + c[1:])
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
        # az never truncates cells; a wide console keeps rich from eliding long ids.
        Console(soft_wrap=True, width=100_000).print(table)
