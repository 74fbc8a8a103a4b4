"""Run All goes through a lesson whose exercises are not finished yet.

A released lesson is full of stubs that raise NotImplementedError, and its demo cells call them. In Jupyter an error
ends Run All: the kernel answers the cell with an error, and ipykernel drops every cell queued after it (the
``stop_on_error`` of an execute request). A custom exception handler (``shell.set_custom_exc``) changes only how the
error is shown: the reply is still an error, so the queue is still dropped. The cell must not fail at all.

``FinishFirst`` is an IPython AST transformer (``shell.ast_transformers``, IPython's extension point for rewriting a
cell before it runs) that wraps each cell in::

    try:
        <the cell>
    except Exception as error:
        if not autograder.notebook.stopped(error, <names the cell assigns>, <names the cell reads>):
            raise
    else:
        autograder.notebook.completed(<names the cell assigns>)

``stopped`` prints one line, ``finish `softmax` above to see this``, and lets the cell end normally in two cases:

* the error is a NotImplementedError raised by a stub: its innermost frame is a function or method whose code was
  compiled from one of this kernel's cells (``softmax``, ``CausalSelfAttention.forward``);
* the error is a consequence of a stub: an earlier cell stopped by it was to assign the name a NameError misses (a
  demo's ``merges``), or, for any other error, a name the cell reads (a dict that cell was filling). The line names
  that stub. A cell that runs through assigns its names afresh, and they are no longer a stub's consequence.

Any other error is raised again, traceback and all: a NotImplementedError from a library (a torch operation with no
kernel for a dtype), or the learner's own mistake in a cell that reads nothing a stub left unfinished. The value of the
cell's last expression is still displayed: it is evaluated inside the ``try``, held, and shown by an expression after
it, where IPython's display picks it up (nothing, after a stub). That is IPython's default display of a cell
(``ast_node_interactivity = "last_expr"``); with ``"all"``, too, only the last expression is shown.

It is installed when ``autograder`` is imported in an IPython shell (a lesson's setup cell), and never while the
notebook is graded: a grader sees every error as it is. Graded cells do not rely on it: ``check`` reports a stub as
"not implemented yet" and, while grading, raises.
"""

from __future__ import annotations

import ast
import sys
from typing import Any

from .core import grading

# How the rewritten cell reaches this module: through sys.modules, not by a name in the learner's namespace, which the
# learner may overwrite or %reset.
_THIS_MODULE = f'__import__("sys").modules["{__name__}"]'
_WRAPPER = f"""
try:
    pass
except Exception as _autograder_error:
    if not {_THIS_MODULE}.stopped(_autograder_error, ASSIGNS, READS):
        raise
else:
    {_THIS_MODULE}.completed(ASSIGNS)
"""


class FinishFirst(ast.NodeTransformer):
    """Wraps a cell so that a stub, or a consequence of one, prints one line instead of failing the cell (module
    docstring). A ``from __future__`` import stays first, where Python requires it; an empty cell stays empty.

    It also keeps what the wrapped cells need between them, for its shell: the value of the cell's last expression
    between ``hold`` and ``shown``, and the names that cells stopped by a stub were to assign (``unfinished``, each
    with the stub's name, the most recently stopped last).
    """

    def __init__(self) -> None:
        super().__init__()
        self.held: Any = None
        self.unfinished: dict[str, str] = {}

    def visit_Module(self, module: ast.Module) -> ast.Module:
        future = 0
        while future < len(module.body) and _is_future_import(module.body[future]):
            future += 1
        head, body = module.body[:future], module.body[future:]
        if not body:
            return module
        names = _Names()
        for statement in body:
            names.visit(statement)
        shown = []
        if isinstance(body[-1], ast.Expr):  # the value IPython would display: hold it, show it after the try
            last = body[-1]
            hold = ast.Call(_expression(f"{_THIS_MODULE}.hold"), [last.value], [])
            body[-1] = ast.copy_location(ast.Expr(hold), last)
            shown = [ast.copy_location(ast.Expr(_expression(f"{_THIS_MODULE}.shown()")), last)]
        source = _WRAPPER.replace("ASSIGNS", repr(tuple(sorted(names.assigned))))
        wrapper = ast.parse(source.replace("READS", repr(tuple(sorted(names.read))))).body[0]
        wrapper.body = body
        for part in [*wrapper.handlers, *wrapper.orelse]:  # their lines point at the cell's last statement
            for node in ast.walk(part):
                if hasattr(node, "lineno"):
                    ast.copy_location(node, body[-1])
        module.body = [*head, ast.copy_location(wrapper, body[0]), *shown]
        return ast.fix_missing_locations(module)

    def stopped(self, error: Exception, assigned: tuple[str, ...], read: tuple[str, ...]) -> bool:
        """True, after printing ``finish `name` above to see this``, when ``error`` comes from a stub defined in
        this notebook or the cell needs what a stub left unfinished; False, so that the cell raises it again, for any
        other. The names the stopped cell assigns are then unfinished too, because of the same stub."""
        self.held = None
        if isinstance(error, NotImplementedError):
            stub = _stub(error)
        elif isinstance(error, NameError):  # the name the cell misses, when a stopped cell was to assign it
            stub = self.unfinished.get(error.name)
        else:  # what the cell reads that a stopped cell was to assign, the most recently stopped first
            stub = next((self.unfinished[name] for name in reversed(self.unfinished) if name in read), None)
        if stub is None:
            return False
        for name in assigned:  # moved to the end: the most recently stopped
            self.unfinished.pop(name, None)
            self.unfinished[name] = stub
        print(f"finish `{stub}` above to see this")
        return True

    def completed(self, assigned: tuple[str, ...]) -> None:
        """A cell ran through: the names it assigns are no longer unfinished."""
        for name in assigned:
            self.unfinished.pop(name, None)


class _Names(ast.NodeVisitor):
    """The names a cell assigns at top level (not inside its functions, classes or comprehensions) and every name it
    reads, anywhere in it."""

    def __init__(self) -> None:
        self.assigned: set[str] = set()
        self.read: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        (self.read if isinstance(node.ctx, ast.Load) else self.assigned).add(node.id)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.assigned.update((alias.asname or alias.name).split(".")[0] for alias in node.names)

    visit_ImportFrom = visit_Import

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.assigned.add(node.name)
        self._read_only(node)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def _read_only(self, node: ast.AST) -> None:
        """Names read inside a scope of its own; what it assigns stays there."""
        inner = _Names()
        inner.generic_visit(node)
        self.read |= inner.read

    visit_Lambda = visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _read_only


def _is_future_import(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


def _expression(source: str) -> ast.expr:
    return ast.parse(source, mode="eval").body


# ---- what the wrapped cells call, on their shell's FinishFirst ------------------------------------------------------


def hold(value: Any) -> None:
    """Keep the value of the cell's last expression until ``shown``."""
    _installed().held = value


def shown() -> Any:
    """The value ``hold`` kept, once; None (which IPython does not display) when the cell was stopped."""
    finish_first = _installed()
    value, finish_first.held = finish_first.held, None
    return value


def stopped(error: Exception, assigned: tuple[str, ...], read: tuple[str, ...]) -> bool:
    """``FinishFirst.stopped``: True when the cell was stopped by a stub, and said so; False to raise ``error``."""
    return _installed().stopped(error, assigned, read)


def completed(assigned: tuple[str, ...]) -> None:
    """``FinishFirst.completed``: the cell ran through."""
    _installed().completed(assigned)


def _shell() -> Any:
    """The running IPython shell, or None (outside IPython, which is then not even imported)."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython else None


def _installed() -> FinishFirst:
    return next(t for t in _shell().ast_transformers if isinstance(t, FinishFirst))


def _stub(error: NotImplementedError) -> str | None:
    """The qualified name of the function or method that raised ``error``, when it was defined in one of this
    kernel's cells (IPython names the file of each cell it compiled); None for any other code, or a cell itself."""
    traceback = error.__traceback__
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    code = traceback.tb_frame.f_code
    if code.co_name == "<module>" or _shell().compile.format_code_name(code.co_filename) is None:
        return None
    return code.co_qualname


def install() -> None:
    """Add ``FinishFirst`` to the running IPython shell's AST transformers, once; nothing outside IPython or while
    the notebook is graded."""
    shell = _shell()
    if shell is None or grading():
        return
    if not any(isinstance(transformer, FinishFirst) for transformer in shell.ast_transformers):
        shell.ast_transformers.append(FinishFirst())
