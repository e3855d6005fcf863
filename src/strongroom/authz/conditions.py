"""Azure ABAC conditions (version 2.0), the subset role assignments use.

Key Vault Data Access Administrator carries such a condition: it may write or
delete role assignments only for eight Key Vault roles. The same syntax is
accepted on role assignments (`--condition`), which is how Azure constrains
delegation ("may assign only these roles"). Supported:

- `ActionMatches{'pattern'}` / `SubOperationMatches{'pattern'}`,
- `@Request[...]`, `@Resource[...]`, `@Principal[...]` attributes, compared with
  String*/Guid* operators, optionally prefixed by ForAnyOfAnyValues,
  ForAllOfAnyValues, ForAnyOfAllValues or ForAllOfAllValues,
- `!`/`NOT`, `AND`/`&&`, `OR`/`||` (NOT binds tighter than AND, AND than OR), parentheses.

Only role-assignment attributes exist here (RoleDefinitionId, PrincipalId,
PrincipalType); a condition naming another attribute is rejected when stored,
so it can never silently evaluate to "allow".
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from strongroom.authz.actions import matches

SUPPORTED_ATTRIBUTES = {
    "microsoft.authorization/roleassignments:roledefinitionid",
    "microsoft.authorization/roleassignments:principalid",
    "microsoft.authorization/roleassignments:principaltype",
}
SOURCES = {"request", "resource", "principal", "environment"}

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<lp>\() | (?P<rp>\)) | (?P<not>!|NOT\b) | (?P<and>&&|AND\b) | (?P<or>\|\||OR\b)
    | (?P<fn>ActionMatches|SubOperationMatches)\s*\{\s*'(?P<fnarg>[^']*)'\s*\}
    | @(?P<src>[A-Za-z]+)\[(?P<attr>[^\]]+)\]
    | (?P<op>(?:ForAnyOfAnyValues|ForAllOfAnyValues|ForAnyOfAllValues|ForAllOfAllValues):[A-Za-z]+|[A-Za-z]+)
    | \{(?P<list>[^}]*)\}
    | '(?P<str>[^']*)'
    )""",
    re.VERBOSE | re.IGNORECASE,
)


class ConditionError(ValueError):
    """The condition is not valid; the message says where."""


@dataclass(frozen=True)
class Context:
    """What a condition can see: the action, and attribute values by (source, attribute)."""

    action: str
    attributes: dict[tuple[str, str], tuple[str, ...]]


Node = Callable[[Context], bool]

_COMPARE: dict[str, Callable[[str, str], bool]] = {
    "stringequals": lambda a, b: a == b,
    "stringnotequals": lambda a, b: a != b,
    "stringequalsignorecase": lambda a, b: a.lower() == b.lower(),
    "stringnotequalsignorecase": lambda a, b: a.lower() != b.lower(),
    "stringlike": lambda a, b: fnmatch.fnmatchcase(a, b),
    "stringnotlike": lambda a, b: not fnmatch.fnmatchcase(a, b),
    "stringstartswith": lambda a, b: a.startswith(b),
    "stringnotstartswith": lambda a, b: not a.startswith(b),
    "guidequals": lambda a, b: a.strip().lower() == b.strip().lower(),
    "guidnotequals": lambda a, b: a.strip().lower() != b.strip().lower(),
}


def _tokens(text: str) -> list[tuple[str, str | tuple[str, str]]]:
    out: list[tuple[str, str | tuple[str, str]]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ConditionError(f"unexpected text at position {pos}: '{text[pos:pos + 20]}'")
        kind = m.lastgroup
        if kind == "fnarg":
            out.append(("fn", (m.group("fn"), m.group("fnarg"))))
        elif kind == "attr":
            out.append(("attr", (m.group("src").lower(), m.group("attr").strip().lower())))
        elif kind == "list":
            out.append(("list", m.group("list")))
        elif kind == "str":
            out.append(("str", m.group("str")))
        elif kind in ("lp", "rp", "not", "and", "or"):
            out.append((kind, ""))
        else:
            out.append(("op", m.group("op")))
        pos = m.end()
    return out


def _values(kind: str, raw: str) -> tuple[str, ...]:
    if kind == "str":
        return (raw,)
    items = [i.strip() for i in raw.split(",") if i.strip()]
    return tuple(i[1:-1] if len(i) >= 2 and i[0] == i[-1] == "'" else i for i in items)


def _any_of(nodes: tuple[Node, ...]) -> Node:
    return lambda ctx: any(node(ctx) for node in nodes)


def _all_of(nodes: tuple[Node, ...]) -> Node:
    return lambda ctx: all(node(ctx) for node in nodes)


class _Parser:
    def __init__(self, tokens: list[tuple[str, str | tuple[str, str]]]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def take(self, kind: str) -> str | tuple[str, str]:
        if self.peek() != kind:
            raise ConditionError(f"expected {kind} at token {self.i + 1}, found {self.peek() or 'the end'}")
        value = self.tokens[self.i][1]
        self.i += 1
        return value

    def take_pair(self, kind: str) -> tuple[str, str]:
        """A token whose value has two parts (a function's name and pattern, an attribute's source and name)."""
        value = self.take(kind)
        if not isinstance(value, tuple):
            raise ConditionError(f"malformed {kind} at token {self.i}")
        return value

    def parse(self) -> Node:
        node = self.or_()
        if self.peek() is not None:
            raise ConditionError(f"unexpected {self.peek()} at token {self.i + 1}")
        return node

    def or_(self) -> Node:
        parts = [self.and_()]
        while self.peek() == "or":
            self.take("or")
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else _any_of(tuple(parts))

    def and_(self) -> Node:
        parts = [self.unary()]
        while self.peek() == "and":
            self.take("and")
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else _all_of(tuple(parts))

    def unary(self) -> Node:
        if self.peek() == "not":
            self.take("not")
            inner = self.unary()
            return lambda ctx: not inner(ctx)
        if self.peek() == "lp":
            self.take("lp")
            node = self.or_()
            self.take("rp")
            return node
        if self.peek() == "fn":
            _, pattern = self.take_pair("fn")
            return lambda ctx: matches(pattern, ctx.action)
        if self.peek() == "attr":
            return self.comparison()
        raise ConditionError(f"expected an expression at token {self.i + 1}, found {self.peek() or 'the end'}")

    def comparison(self) -> Node:
        source, attribute = self.take_pair("attr")
        if source not in SOURCES:
            raise ConditionError(f"unknown attribute source '@{source}'")
        if attribute not in SUPPORTED_ATTRIBUTES:
            raise ConditionError(f"attribute '{attribute}' is not supported")
        op = str(self.take("op"))
        quantifier, _, name = op.rpartition(":")
        compare = _COMPARE.get(name.lower())
        if compare is None:
            raise ConditionError(f"unknown operator '{op}'")
        kind = self.peek()
        if kind not in ("list", "str"):
            raise ConditionError(f"expected a value after '{op}'")
        values = _values(kind, str(self.take(kind)))
        if not values:
            raise ConditionError(f"'{op}' needs at least one value")
        key = (source, attribute)
        q = quantifier.lower()

        def node(ctx: Context) -> bool:
            left = ctx.attributes.get(key)
            if not left:
                return False  # an absent attribute never satisfies a comparison
            if q in ("", "foranyofanyvalues"):
                return any(compare(a, b) for a in left for b in values)
            if q == "forallofanyvalues":
                return all(any(compare(a, b) for b in values) for a in left)
            if q == "foranyofallvalues":
                return any(all(compare(a, b) for b in values) for a in left)
            return all(compare(a, b) for a in left for b in values)

        return node


@lru_cache(maxsize=256)
def compile_condition(text: str) -> Node:
    """Parse once; raises ConditionError for anything outside the supported subset."""
    if len(text) > 8192:
        raise ConditionError("the condition is longer than 8192 characters")
    return _Parser(_tokens(text)).parse()


def evaluate(text: str, ctx: Context) -> bool:
    return compile_condition(text)(ctx)


Attributes = dict[tuple[str, str], tuple[str, ...]]


def assignment_attributes(source: str, role_definition_guid: str, principal_id: str, principal_type: str) -> Attributes:
    prefix = "microsoft.authorization/roleassignments:"
    return {
        (source, prefix + "roledefinitionid"): (role_definition_guid,),
        (source, prefix + "principalid"): (principal_id,),
        (source, prefix + "principaltype"): (principal_type,),
    }


__all__ = ["ConditionError", "Context", "compile_condition", "evaluate", "assignment_attributes"]
