"""Run a learner's notebook without a Jupyter kernel, into a fresh module the checks can probe.

A kernel costs seconds to start and runs every cell, pictures and slow demos included; grading needs only the
learner's definitions. So the loader reads the notebook's JSON and executes its code cells in order, in one fresh
``types.ModuleType``, in this process:

* skipped: nbgrader's graded test cells (they call the checks, which is the grader's job) and cells tagged
  ``demo`` (pictures, slow runs);
* kept: the setup cell, the answer cells and any helper cells the learner added;
* IPython syntax is translated: a ``%magic`` or ``!shell`` line becomes ``pass``; a ``%%time`` or ``%%capture``
  cell keeps its body; other cell magics (``%%bash``, ``%%writefile`` …) drop their cell.

Learner code is run under guard (``guarded``): a wall-clock limit per cell or probe (SIGALRM, which interrupts
Python loops but not one long call into C), its prints discarded, stdin empty, the notebook's folder as working
directory, and ``sys.exit``/``KeyboardInterrupt`` turned into a reported problem. A cell that fails is reported,
in words a learner can act on, and the later cells still run — as in Jupyter, where one red cell does not erase the
others. This is no sandbox: the code runs as the grader. ``autograder.sandbox`` adds a process boundary, and
loads with ``definitions_only=True``: of each cell, only what ``autograder.definitions`` keeps runs.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import signal
import sys
import threading
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .core import GRADING_ENV, Check, ProbeOutcome, run_probe
from .definitions import definitions

SKIPPED_TAGS = {"demo"}
CELL_MAGICS_WITH_PYTHON_BODY = {"time", "capture"}  # %%time / %%capture run their body in the namespace
MESSAGE_CAP = 300  # characters of a learner's exception message kept in a problem


class NotebookError(Exception):
    """The file is not a notebook this loader can read; nothing could be graded."""


class TimeLimitExceeded(BaseException):
    """Raised inside learner code when its time is up. A BaseException, so ``except Exception`` in learner code
    does not swallow it."""


@dataclass
class LoadedNotebook:
    """A notebook's top-level names (``module``) and what went wrong while running its cells (``problems``)."""

    path: Path
    module: types.ModuleType
    check_timeout: float | None = 10.0
    problems: list[str] = field(default_factory=list)

    def outcome(self, check: Check) -> ProbeOutcome:
        """Probe the learner's object for ``check`` under guard: a hang, ``sys.exit`` or Ctrl-C becomes a reason."""
        obj = getattr(self.module, check.target, None)
        timeout = self.check_timeout
        try:
            with guarded(self.path.parent, timeout):
                return run_probe(check, obj)
        except TimeLimitExceeded:
            return ProbeOutcome(error=f"`{check.target}` did not finish in {timeout:g} s — an infinite loop?")
        except SystemExit:
            return ProbeOutcome(error=f"`{check.target}` called sys.exit() (or raised SystemExit)")
        except KeyboardInterrupt:
            return ProbeOutcome(error=f"`{check.target}` was interrupted (KeyboardInterrupt)")


# ---- reading ---------------------------------------------------------------------------------------------------------


def read_cells(path: str | os.PathLike) -> list[dict]:
    """The cells of an nbformat-4 notebook, read as plain JSON (importing nbformat alone costs over a second)."""
    path = Path(path)
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise NotebookError(f"{path} is not a notebook: it is not valid JSON ({e})") from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list) or not all(isinstance(cell, dict) for cell in cells):
        if isinstance(notebook, dict) and "worksheets" in notebook:
            raise NotebookError(f"{path} is an nbformat 3 notebook: open and save it in Jupyter to upgrade it")
        raise NotebookError(f"{path} is not a notebook: it has no list of cells")
    return cells


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def is_skipped(cell: dict) -> bool:
    """True for cells the grader must not run: nbgrader graded test cells and cells tagged demo."""
    metadata = cell.get("metadata") or {}
    nbgrader = metadata.get("nbgrader") or {}
    if nbgrader.get("grade") and not nbgrader.get("solution"):
        return True
    return bool(SKIPPED_TAGS & set(metadata.get("tags") or ()))


def python_source(source: str) -> str | None:
    """A cell's source with IPython syntax translated to Python, or None when the whole cell is not Python.
    Line numbers are kept, so a reported ``(line 3)`` is line 3 of the cell the learner sees."""
    lines = source.split("\n")
    first = lines[0].strip()
    if first.startswith("%%"):
        if first[2:].split(" ")[0] not in CELL_MAGICS_WITH_PYTHON_BODY:
            return None
        lines[0] = ""
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            lines[i] = line[: len(line) - len(stripped)] + "pass"  # keeps an indented block non-empty
    return "\n".join(lines)


# ---- guarding learner code -------------------------------------------------------------------------------------------


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise TimeLimitExceeded in this thread after ``seconds`` (then again every second, so a bare ``except:``
    in a loop cannot hold it off for long). An outer timer (pytest-timeout's, say) is restored afterwards with
    what was left of it. Off the main thread, or with ``seconds=None``, there is no limit."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise TimeLimitExceeded(seconds)

    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay:
            left = previous_delay - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), previous_interval)


class _Discard(io.TextIOBase):
    """Where learner prints go: nowhere, at once, however many there are."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)


@contextmanager
def guarded(folder: Path, timeout: float | None) -> Iterator[None]:
    """The conditions learner code runs under: a time limit, prints discarded, stdin empty, ``folder`` as the
    working directory. Everything is put back afterwards, whatever the learner's code changed."""
    saved = sys.stdin, sys.stdout, sys.stderr, os.getcwd()
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(), _Discard(), _Discard()
    try:
        os.chdir(folder)
        with time_limit(timeout):
            yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved[:3]
        os.chdir(saved[3])


# ---- running ---------------------------------------------------------------------------------------------------------


def _described(error: BaseException) -> str:
    """``ZeroDivisionError: division by zero``, the message cut to MESSAGE_CAP characters."""
    try:
        text = str(error)
    except Exception:  # a learner's exception class may break even this
        text = ""
    text = text if len(text) <= MESSAGE_CAP else text[:MESSAGE_CAP] + " …"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _line_in_cell(error: BaseException, filename: str) -> str:
    """`` (line N)`` for the innermost traceback frame inside the cell, or nothing."""
    line = None
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" (line {line})" if line is not None else ""


def _parse_cell(code: str, number: int) -> ast.Module | str:
    """A cell's syntax tree, or the problem that it has none."""
    try:
        return ast.parse(code, f"<cell {number}>")
    except SyntaxError as e:  # IndentationError included
        return f"cell {number}: {type(e).__name__}: {e.msg} (line {e.lineno}); the cell was skipped"
    except ValueError as e:  # e.g. a null byte in the source
        return f"cell {number}: {e}; the cell was skipped"


def _run_cell(tree: ast.Module, number: int, namespace: dict, folder: Path, timeout: float | None) -> str | None:
    """Execute one cell into ``namespace``; a problem in words, or None when it ran through."""
    filename = f"<cell {number}>"
    try:
        compiled = compile(tree, filename, "exec")
    except SyntaxError as e:  # what the parser allows and the compiler does not: `return` outside a function
        return f"cell {number}: {type(e).__name__}: {e.msg} (line {e.lineno}); the cell was skipped"
    try:
        with guarded(folder, timeout):
            exec(compiled, namespace)
    except TimeLimitExceeded:
        return f"cell {number} did not finish in {timeout:g} s: skipped"
    except SystemExit:
        return f"cell {number} called sys.exit() (or raised SystemExit): the rest of the cell was skipped"
    except KeyboardInterrupt:
        return f"cell {number} was interrupted (KeyboardInterrupt): the rest of the cell was skipped"
    except Exception as e:
        where = _line_in_cell(e, filename)
        return f"cell {number} raised {_described(e)}{where}, its later definitions are missing"
    return None


@contextmanager
def _grading_flag(on: bool) -> Iterator[None]:
    """GRADING_ENV set to "1" (``on``) or left as it is, and put back afterwards."""
    previous = os.environ.get(GRADING_ENV)
    if on:
        os.environ[GRADING_ENV] = "1"
    try:
        yield
    finally:
        if on and previous is None:
            del os.environ[GRADING_ENV]
        elif on:
            os.environ[GRADING_ENV] = previous


def _module_name(path: Path) -> str:
    return "notebook_" + re.sub(r"\W", "_", path.stem)


def _cell_trees(
    path: Path, module_name: str, definitions_only: bool
) -> tuple[dict[int, ast.Module], list[tuple[int, str]]]:
    """The syntax tree of each code cell that runs (by cell number), and (cell number, problem) for the others."""
    trees, problems = {}, []
    for number, cell in enumerate(read_cells(path), start=1):
        if cell.get("cell_type") != "code" or is_skipped(cell):
            continue
        code = python_source(_source(cell))
        if code is None or not code.strip():
            continue
        tree = _parse_cell(code, number)
        if isinstance(tree, str):
            problems.append((number, tree))
        else:
            trees[number] = tree
    if definitions_only:
        trees, left_out = definitions(trees, module_name)
        problems += left_out
    return trees, problems


def preload_imports(path: str | os.PathLike, timeout: float | None = 10.0) -> None:
    """Import, in this process, the libraries the notebook's definitions import (installed code, not the
    notebook's), so that processes forked from this one find them loaded. Failures are for the loading to report."""
    path = Path(path).resolve()
    trees, _ = _cell_trees(path, _module_name(path), definitions_only=True)
    for number, tree in trees.items():
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                try:
                    with guarded(path.parent, timeout):
                        exec(compile(ast.Module([node], []), f"<cell {number}>", "exec"), {})
                except (Exception, TimeLimitExceeded):
                    pass


def load_notebook(
    path: str | os.PathLike,
    cell_timeout: float | None = 10.0,
    check_timeout: float | None = 10.0,
    grading: bool = True,
    definitions_only: bool = False,
) -> LoadedNotebook:
    """Execute the notebook's code cells (see the module docstring for which) into a fresh module; its
    ``outcome(check)`` then probes them, each probe limited to ``check_timeout`` seconds.

    ``grading`` (the graders' case) sets AUTOGRADER_GRADING=1 while the cells run, so that a ``yours(...)`` in a
    setup cell gives the reference's objects and the notebook is graded on its own, and sets matplotlib's backend to
    Agg. ``autograder.yours`` loads a learner's earlier notebook with ``grading=False``: inside the learner's kernel,
    where the backend is Jupyter's and the earlier notebook's own ``yours(...)`` carries the learner's code forward.
    With ``definitions_only``, only the imports, definitions and constants of each cell run
    (``autograder.definitions``), as the sandbox's worker runs notebooks it does not trust.

    Cells are numbered as the learner counts them: 1 is the notebook's first cell, markdown included. Raises
    NotebookError only when the file cannot be read as a notebook; everything else is a problem in the result.
    """
    path = Path(path).resolve()
    if grading:
        os.environ["MPLBACKEND"] = "Agg"  # a plt.show() in a kept cell must not open a window and wait for it
    name = _module_name(path)
    trees, problems = _cell_trees(path, name, definitions_only)
    module = types.ModuleType(name, f"the learner's definitions from {path.name}")
    sys.modules[name] = module  # dataclasses and typing look classes' modules up there
    loaded = LoadedNotebook(path, module, check_timeout)
    with _grading_flag(grading):
        for number, tree in trees.items():
            problem = _run_cell(tree, number, module.__dict__, path.parent, cell_timeout)
            if problem:
                problems.append((number, problem))
    loaded.problems = [problem for _, problem in sorted(problems, key=lambda p: p[0])]
    return loaded
