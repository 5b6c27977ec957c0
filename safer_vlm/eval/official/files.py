"""Reading a benchmark's own evaluation files at run time, without running them.

The judge prompts, refusal lists and label sets are the benchmarks' own words: they are never copied
into this package. A user points at the benchmark's repository (or a copy of its files, e.g.
`../shared/official-protocols/<Benchmark>/`); each protocol names the repository-relative paths it
needs, and the values are located by variable (or function and variable) name in the file's syntax
tree and read with `ast.literal_eval`, so no code of theirs is executed or imported. A file whose
layout changed so that a value cannot be found stops the run with one line naming the file and what
was expected.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safer_vlm.errors import ConfigError


class ProtocolFileError(ConfigError):
    """An official evaluation file is missing or no longer holds what its protocol reads."""


@dataclass
class OfficialFiles:
    """The benchmark's repository root (or a copy of its evaluation files) and the files read so far,
    each with its sha256 (recorded in results.json)."""

    root: Path
    read: dict[str, str] = field(default_factory=dict)

    def path(self, rel: str) -> Path:
        return self.root / rel

    def has(self, rel: str) -> bool:
        return self.path(rel).is_file()

    def text(self, rel: str) -> str:
        path = self.path(rel)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ProtocolFileError(f"{path}: cannot read the benchmark's evaluation file ({exc.strerror})") from None
        self.read[str(path)] = hashlib.sha256(data).hexdigest()
        return data.decode("utf-8")

    def tree(self, rel: str) -> ast.Module:
        try:
            return ast.parse(self.text(rel), filename=str(self.path(rel)))
        except SyntaxError as exc:
            raise ProtocolFileError(f"{self.path(rel)}: not parseable Python ({exc.msg}, line {exc.lineno})") from None

    def literal(self, rel: str, name: str, *, function: str | None = None, where: str | None = None,
                kind: type | tuple[type, ...] = str) -> Any:
        """The literal assigned to `name` (at module level, or inside `function`); where the name is
        assigned more than once, `where` picks the assignment whose enclosing `if` test mentions it.
        Triple-quoted strings and adjacent literals are both string literals here."""
        found = self.assignments(rel, name, function=function, where=where)
        what = f"a {'/'.join(t.__name__ for t in (kind if isinstance(kind, tuple) else (kind,)))} literal " \
               f"assigned to `{name}`" + (f" in function `{function}`" if function else "") + \
               (f" under a test mentioning {where!r}" if where else "")
        if len(found) != 1:
            raise ProtocolFileError(f"{self.path(rel)}: expected {what}; found {len(found)} such assignments "
                                    "(has the file changed?)")
        try:
            value = _literal(found[0])
        except ValueError:
            raise ProtocolFileError(f"{self.path(rel)}: expected {what}; it is not a literal") from None
        if not isinstance(value, kind):
            raise ProtocolFileError(f"{self.path(rel)}: expected {what}; found a {type(value).__name__}")
        return value

    def assignments(self, rel: str, name: str, *, function: str | None = None,
                    where: str | None = None) -> list[ast.expr]:
        scope: ast.AST = self.tree(rel)
        if function is not None:
            funcs = [n for n in ast.walk(scope) if isinstance(n, ast.FunctionDef) and n.name == function]
            if len(funcs) != 1:
                raise ProtocolFileError(f"{self.path(rel)}: expected one function `{function}`; found {len(funcs)}")
            scope = funcs[0]
        out: list[ast.expr] = []
        body = scope.body if function is not None else scope.body  # type: ignore[attr-defined]
        for node, tests in _walk_with_tests(body, []):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                if where is None or any(where in ast.unparse(t) for t in tests):
                    out.append(node.value)
        return out

    def function_literal_list(self, rel: str, function: str, name: str) -> list[Any]:
        """A list literal assigned to `name` inside `function` (VLGuard's refusal list)."""
        return self.literal(rel, name, function=function, kind=list)

    def class_literals(self, rel: str, cls: str, field_name: str) -> tuple[Any, ...]:
        """The values of `field_name: Literal[...]` in class `cls` (VLSBench's structured labels)."""
        for node in ast.walk(self.tree(rel)):
            if isinstance(node, ast.ClassDef) and node.name == cls:
                for item in node.body:
                    if (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                            and item.target.id == field_name and isinstance(item.annotation, ast.Subscript)):
                        try:
                            value = ast.literal_eval(item.annotation.slice)
                        except ValueError:
                            break
                        return value if isinstance(value, tuple) else (value,)
        raise ProtocolFileError(f"{self.path(rel)}: expected class `{cls}` with a field `{field_name}: Literal[...]`")


_STRING_METHODS = ("strip", "lstrip", "rstrip")


def _literal(node: ast.expr) -> Any:
    """`ast.literal_eval`, plus a string literal followed by `.strip()` (VLSBench writes its template
    so): the method is applied here, nothing of the file is run."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _STRING_METHODS
            and not node.args and not node.keywords):
        inner = ast.literal_eval(node.func.value)
        if isinstance(inner, str):
            return getattr(inner, node.func.attr)()
    return ast.literal_eval(node)


def constants_compared(files: OfficialFiles, rel: str, function: str) -> list[str]:
    """String constants that `function` compares with `==` (VLGuard's exact-match refusal "it is not")."""
    funcs = [n for n in ast.walk(files.tree(rel)) if isinstance(n, ast.FunctionDef) and n.name == function]
    if len(funcs) != 1:
        raise ProtocolFileError(f"{files.path(rel)}: expected one function `{function}`; found {len(funcs)}")
    out = []
    for node in ast.walk(funcs[0]):
        if isinstance(node, ast.Compare) and all(isinstance(op, ast.Eq) for op in node.ops):
            out.extend(c.value for c in node.comparators if isinstance(c, ast.Constant) and isinstance(c.value, str))
    return out


def call_string_argument(files: OfficialFiles, rel: str, function: str, name: str) -> str:
    """The string literal passed first to the call assigned to `name` in `function`
    (SIUO's `pattern = re.compile(r"...")`)."""
    found = files.assignments(rel, name, function=function)
    if len(found) == 1 and isinstance(found[0], ast.Call) and found[0].args:
        arg = found[0].args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
    raise ProtocolFileError(f"{files.path(rel)}: expected `{name} = <call>(<string literal>)` in function `{function}`")


def if_chain_mapping(files: OfficialFiles, rel: str, function: str, subject: str, target: str) -> tuple[dict[str, str], str]:
    """From an `if subject == 'X': target = NAME ... else: target = NAME` chain in `function`: the
    {X: NAME} mapping and the else branch's NAME (MM-SafetyBench's scenario -> template choice)."""
    funcs = [n for n in ast.walk(files.tree(rel)) if isinstance(n, ast.FunctionDef) and n.name == function]
    if len(funcs) != 1:
        raise ProtocolFileError(f"{files.path(rel)}: expected one function `{function}`; found {len(funcs)}")
    mapping: dict[str, str] = {}
    default: str | None = None

    def assigned(body: list[ast.stmt]) -> str | None:
        for st in body:
            if (isinstance(st, ast.Assign) and any(isinstance(t, ast.Name) and t.id == target for t in st.targets)
                    and isinstance(st.value, ast.Name)):
                return st.value.id
        return None

    for node in ast.walk(funcs[0]):
        if not isinstance(node, ast.If) or not _compares(node.test, subject):
            continue
        chain: ast.stmt | None = node
        while isinstance(chain, ast.If) and _compares(chain.test, subject):
            value = assigned(chain.body)
            key = chain.test.comparators[0].value  # type: ignore[attr-defined]
            if value is not None:
                mapping.setdefault(key, value)
            orelse = chain.orelse
            chain = orelse[0] if len(orelse) == 1 and isinstance(orelse[0], ast.If) else None
            if chain is None and orelse:
                default = assigned(orelse) or default
        break
    if not mapping or default is None:
        raise ProtocolFileError(f"{files.path(rel)}: expected in `{function}` an if/elif/else chain on `{subject}` "
                                f"assigning `{target}`")
    return mapping, default


def _compares(test: ast.expr, subject: str) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == subject
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and isinstance(test.comparators[0].value, str))


def dict_value_in(files: OfficialFiles, rel: str, function: str, match: tuple[str, str], key: str) -> str:
    """In `function`, the string under `key` of the dict literal holding `match` (VLSBench's
    `{"role": "system", "content": ...}`)."""
    funcs = [n for n in ast.walk(files.tree(rel)) if isinstance(n, ast.FunctionDef) and n.name == function]
    for node in ast.walk(funcs[0]) if len(funcs) == 1 else ():
        if isinstance(node, ast.Dict):
            pairs = {k.value: v for k, v in zip(node.keys, node.values, strict=True)
                     if isinstance(k, ast.Constant) and isinstance(k.value, str)}
            m = pairs.get(match[0])
            v = pairs.get(key)
            if (isinstance(m, ast.Constant) and m.value == match[1] and isinstance(v, ast.Constant)
                    and isinstance(v.value, str)):
                return v.value
    raise ProtocolFileError(f"{files.path(rel)}: expected in `{function}` a dict {{{match[0]!r}: {match[1]!r}, "
                            f"{key!r}: <string>}}")


def _walk_with_tests(body: list[ast.stmt], tests: list[ast.expr]):
    """Statements of a body, depth first, each with the `if` tests enclosing it."""
    for node in body:
        yield node, tests
        if isinstance(node, ast.If):
            yield from _walk_with_tests(node.body, [*tests, node.test])
            yield from _walk_with_tests(node.orelse, [*tests, node.test])
        elif isinstance(node, (ast.For, ast.While, ast.With, ast.Try)):
            for part in ("body", "orelse", "finalbody"):
                yield from _walk_with_tests(getattr(node, part, []) or [], tests)
            for handler in getattr(node, "handlers", []) or []:
                yield from _walk_with_tests(handler.body, tests)
