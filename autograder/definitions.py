"""Definitions only: which statements of an untrusted notebook the hardened grader runs.

A learner's notebook holds definitions (imports, functions, classes, constants) and scratch (demos, prints, a
``torch.manual_seed(0)``). Grading needs the definitions only, and running the scratch would let the notebook change
how the probes run before any probe starts: three top-level lines that wrap the probe runner forge full marks in any
lesson. So the sandbox's worker runs a cell's statements only when evaluating them runs no code of the notebook's
own:

* imports (absolute; not of the notebook's own module);
* ``def`` and ``class``, whose bodies are not run now; what *is* evaluated at definition time (decorators, default
  values, annotations, base classes, class attributes) must be *inert*, see below. A class may not define
  ``__init_subclass__``, ``__class_getitem__``, ``__set_name__``, ``__mro_entries__`` or ``__prepare__``, the hooks
  Python calls while it defines classes;
* assignments of inert values to plain names: ``N_EMBD = 32``, ``DEVICE = torch.device("cpu")`` and the
  carry-forward ``Block = yours("03_gpt_block").Block``;
* ``if`` and ``try`` statements made of these only, with inert conditions and exception types.

An expression is inert when it is made of literals, names, public attributes, operators and comprehensions, and its
calls are to functions imported from libraries (or builtins) with arguments that name nothing the notebook defines.
Libraries that reach into the interpreter or the system (``os``, ``sys``, ``ctypes``, ``gc``, ``importlib`` …),
the builtins that execute or patch code (``exec``, ``setattr`` …) and the grader itself (``autograder``, except its
``yours``) may not be named in one at all. Everything else is left out; a left-out statement that defines names is
reported (the learner sees why ``stoi`` is missing), a bare expression is dropped silently.
"""

from __future__ import annotations

import ast
import builtins

UNSAFE_BUILTINS = frozenset({
    "exec", "eval", "compile", "__import__", "open", "input", "breakpoint", "setattr", "delattr", "getattr",
    "globals", "locals", "vars", "exit", "quit", "help", "memoryview",
})  # fmt: skip
UNSAFE_MODULES = frozenset({
    "os", "sys", "subprocess", "ctypes", "importlib", "builtins", "gc", "inspect", "signal", "atexit", "threading",
    "_thread", "multiprocessing", "concurrent", "asyncio", "socket", "shutil", "pickle", "marshal", "runpy", "code",
    "codeop", "pty", "io", "faulthandler", "operator", "types", "sysconfig", "resource", "mmap", "fcntl", "select",
    "trace", "pdb", "weakref", "copyreg", "posix", "site", "autograder", "__main__",
})  # fmt: skip
CLASS_CREATION_HOOKS = frozenset(
    {"__init_subclass__", "__class_getitem__", "__set_name__", "__mro_entries__", "__prepare__"}
)
CARRY_FORWARD = "yours"  # autograder.yours.yours: the one name of the grader a definition may call
SAFE_BUILTINS = frozenset(name for name in dir(builtins) if not name.startswith("_")) - UNSAFE_BUILTINS


class _Names:
    """What each name at a notebook's top level is bound by: the notebook (``defined``) or an import (``imported``:
    the name's module path, ``torch.nn`` for ``import torch.nn as nn``, ``autograder.yours`` for its ``yours``)."""

    def __init__(self, trees: list[ast.Module], module_name: str) -> None:
        self.module_name = module_name
        self.defined: set[str] = set()
        self.imported: dict[str, str] = {}
        for tree in trees:
            for node in _top_level(tree.body):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        self.imported[alias.asname or alias.name.split(".")[0]] = (
                            alias.name if alias.asname else alias.name.split(".")[0]
                        )
                elif isinstance(node, ast.ImportFrom):
                    for alias in node.names:
                        self.imported[alias.asname or alias.name] = f"{node.module or ''}.{alias.name}"
                else:
                    self.defined |= _bound_names(node)
        for name in self.defined:
            self.imported.pop(name, None)  # bound both ways: the notebook's

    def unsafe(self, name: str) -> str | None:
        """Why naming ``name`` at definition time could run or reach what it must not; None when it cannot."""
        if name in self.defined:
            return None
        if name in self.imported:
            source = self.imported[name]
            package = source.split(".")[0]
            if package in UNSAFE_MODULES and not (package == "autograder" and source.endswith("." + CARRY_FORWARD)):
                return f"it uses `{name}` (from {package}), which definitions may not use"
            if package == self.module_name:
                return "it imports the notebook's own module"
            return None
        if name.startswith("__") or name in UNSAFE_BUILTINS:
            return f"it uses `{name}`, which definitions may not use"
        return None


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements of a body, those nested in ``if``/``try`` included (they bind top-level names too)."""
    found = []
    for node in body:
        found.append(node)
        if isinstance(node, ast.If):
            found += _top_level(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            found += _top_level(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                found += _top_level(handler.body)
    return found


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {alias.asname or alias.name.split(".")[0] for alias in node.names}
    names = set()
    targets = {
        ast.Assign: lambda n: n.targets, ast.AnnAssign: lambda n: [n.target], ast.AugAssign: lambda n: [n.target],
        ast.For: lambda n: [n.target], ast.AsyncFor: lambda n: [n.target],
        ast.With: lambda n: [i.optional_vars for i in n.items if i.optional_vars],
        ast.AsyncWith: lambda n: [i.optional_vars for i in n.items if i.optional_vars],
    }.get(type(node), lambda n: [])(node)[:]  # fmt: skip (a copy: it is consumed below)
    while targets:  # names, and names in tuples and lists; not `obj.attr` or `table[key]`
        target = targets.pop()
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            targets += target.elts
        elif isinstance(target, ast.Starred):
            targets.append(target.value)
    if isinstance(node, ast.Try):
        names |= {h.name for h in node.handlers if h.name}
    names |= {n.id for n in ast.walk(node) if isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name)}
    return names


def _chain(node: ast.expr) -> list[str] | None:
    """``["torch", "nn", "Linear"]`` for ``torch.nn.Linear``; None for anything but names and attributes."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    return [node.id, *parts] if isinstance(node, ast.Name) else None


_INERT_NODES = (
    ast.Constant, ast.Name, ast.Attribute, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.Starred, ast.UnaryOp,
    ast.BinOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Subscript, ast.Slice, ast.Call, ast.keyword, ast.JoinedStr,
    ast.FormattedValue, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.comprehension,
    ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
)  # fmt: skip


def _not_inert(node: ast.AST | None, names: _Names) -> str | None:
    """Why evaluating ``node`` could run code of the notebook's, or reach what it must not; None when inert."""
    if node is None:
        return None
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and (reason := names.unsafe(sub.id)):
            return reason
    for sub in ast.walk(node):
        if not isinstance(sub, _INERT_NODES):
            return f"it evaluates a {type(sub).__name__} when defined"
        if isinstance(sub, ast.Attribute) and sub.attr.startswith("_"):
            return f"it uses the private attribute `.{sub.attr}`"
        if isinstance(sub, ast.Subscript) and (chain := _chain(sub.value)) and chain[0] in names.defined:
            return f"it subscripts `{chain[0]}`, defined in the notebook"
        if isinstance(sub, ast.Call):
            if reason := _not_a_library_callable(sub.func, names):
                return reason
            arguments = [*sub.args, *(k.value for k in sub.keywords)]
            used = {n.id for a in arguments for n in ast.walk(a) if isinstance(n, ast.Name)} & names.defined
            if used:
                return f"it passes `{sorted(used)[0]}`, defined in the notebook, to a call when defined"
    return None


def _not_a_library_callable(node: ast.expr, names: _Names) -> str | None:
    """Why calling ``node`` (a callee, a decorator, a metaclass) could run the notebook's code; None when what is
    called comes from a library or the builtins."""
    chain = _chain(node)
    if chain is None:
        return "it calls the result of an expression when defined"
    if chain[0] in names.defined:
        return f"it calls `{chain[0]}`, defined in the notebook, when defined"
    if chain[0] not in names.imported and chain[0] not in SAFE_BUILTINS:
        return f"it calls `{chain[0]}`, which is not imported"
    return None


def _not_applicable(node: ast.expr, names: _Names) -> str | None:
    """Why a decorator or metaclass ``node`` could run the notebook's code when applied; None when it cannot: an
    inert call's result, or a library's callable."""
    return _not_inert(node, names) or (None if isinstance(node, ast.Call) else _not_a_library_callable(node, names))


def _not_a_definition(node: ast.stmt, names: _Names) -> str | None:
    """Why ``node`` is left out when grading; None when it is kept."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        if isinstance(node, ast.ImportFrom) and node.level:
            return "a relative import"
        modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
        if any(m.split(".")[0] in (names.module_name, "__main__") for m in modules):
            return "it imports the notebook's own module"
        return None
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        arguments = node.args
        evaluated = [*arguments.defaults, *arguments.kw_defaults, node.returns]
        for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]:
            evaluated.append(arg.annotation if arg else None)
        applied = (_not_applicable(d, names) for d in node.decorator_list)
        return next(filter(None, [*applied, *(_not_inert(e, names) for e in evaluated)]), None)
    if isinstance(node, ast.ClassDef):
        applied = [_not_applicable(e, names) for e in [*node.decorator_list, *(k.value for k in node.keywords)]]
        reason = next(filter(None, [*applied, *(_not_inert(e, names) for e in node.bases)]), None)
        for statement in node.body:
            if reason:
                break
            hooks = _bound_names(statement) & CLASS_CREATION_HOOKS
            if hooks:
                reason = f"it defines {min(hooks)}, which Python runs while defining classes"
            elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                continue  # a docstring
            elif isinstance(statement, ast.Pass):
                continue
            else:
                reason = _not_a_definition(statement, names)
        return reason
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if not all(isinstance(n, (ast.Name, ast.Tuple, ast.List, ast.Store)) for t in targets for n in ast.walk(t)):
            return "it assigns to an attribute or an item"
        annotation = node.annotation if isinstance(node, ast.AnnAssign) else None
        return _not_inert(node.value, names) or _not_inert(annotation, names)
    if isinstance(node, ast.If):
        parts = node.body + node.orelse
        return _not_inert(node.test, names) or next(filter(None, (_not_a_definition(s, names) for s in parts)), None)
    if isinstance(node, ast.Try):
        parts = node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
        types = [h.type for h in node.handlers]
        reasons = [*(_not_inert(t, names) for t in types), *(_not_a_definition(s, names) for s in parts)]
        return next(filter(None, reasons), None)
    if isinstance(node, ast.Pass) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
        return None
    return f"a{'n' if type(node).__name__[0] in 'AEIOU' else ''} {type(node).__name__} statement is not a definition"


def definitions(
    trees: dict[int, ast.Module], module_name: str
) -> tuple[dict[int, ast.Module], list[tuple[int, str]]]:
    """The definitions of each cell's code (by cell number), and (cell number, problem) for each left-out
    statement that defined names (``"cell 4 (line 2): `stoi` not defined when grading: …"``)."""
    names = _Names(list(trees.values()), module_name)
    kept, problems = {}, []
    for number, tree in trees.items():
        body = []
        for node in tree.body:
            reason = _not_a_definition(node, names)
            if reason is None:
                body.append(node)
                continue
            bound = sorted(_bound_names(node) if not isinstance(node, (ast.If, ast.Try)) else names.defined & {
                n for s in _top_level([node]) for n in _bound_names(s)})  # fmt: skip
            if bound:
                what = ", ".join(f"`{n}`" for n in bound[:3]) + (" …" if len(bound) > 3 else "")
                problems.append((number,
                    f"cell {number} (line {node.lineno}): {what} not defined when grading: {reason} (the grader "
                    "runs only the imports, definitions and constants of notebooks it does not trust)"
                ))
        kept[number] = ast.Module(body=body, type_ignores=[])
    return kept, problems
