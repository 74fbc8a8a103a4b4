"""Repair submissions whose nbgrader cell ids were duplicated by copy and paste.

JupyterLab copies a cell's metadata along with its source, so a learner who copies an exercise cell (to keep a
working version, say) or a graded cell hands in two cells with the same nbgrader ``grade_id``. nbgrader 0.9.6 then
fails that submission: its DeduplicateIds step warns "Cell with id '...' exists multiple times!", empties the
metadata of the earlier copies, and OverwriteCells (with ``add_missing_cells`` on, as this course configures it)
stops with a KeyError on the emptied cell. No autograded notebook is written for that learner.

The repair keeps nbgrader metadata on one copy and removes it from the others, which become ordinary cells. Which
copy keeps it:

* a copy whose source is still what was released (its nbgrader checksum still matches), when the cell is locked
  (graded test cells, read-only text): autograde restores a locked cell's source from the gradebook anyway, but an
  unmodified copy is the one the learner did not paste over;
* otherwise the first copy. For an exercise cell it makes no difference to the score: every copy still runs, and
  the last definition of the function is the one graded, exactly as when the learner ran the notebook.

Usage::

    python -m autograder.repair submitted/                  # every notebook below, in place
    python -m autograder.repair in.ipynb -o repaired.ipynb

A notebook that cannot be read is reported (on stderr) and the others are still repaired; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader.utils import compute_checksum, is_locked


def _unmodified(cell: NotebookNode) -> bool:
    stored = cell.metadata["nbgrader"].get("checksum")
    return stored is not None and stored == compute_checksum(cell)


def _keeper(cells: list[tuple[int, NotebookNode]]) -> int:
    """The index of the copy that keeps its nbgrader metadata (see the module docstring)."""
    if is_locked(cells[0][1]):
        unmodified = [index for index, cell in cells if _unmodified(cell)]
        if unmodified:
            return unmodified[0]
    return cells[0][0]


def strip_duplicate_grade_ids(nb: NotebookNode) -> list[str]:
    """Remove nbgrader metadata from all but one cell of each duplicated grade_id, in place.

    Returns one line per cell changed, saying which cell kept the id (cells counted from 1, as JupyterLab shows
    them); an empty list when there was nothing to repair.
    """
    by_id: dict[str, list[tuple[int, NotebookNode]]] = defaultdict(list)
    for index, cell in enumerate(nb.cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None:
            by_id[grade_id].append((index, cell))
    changes = []
    for grade_id, cells in by_id.items():
        if len(cells) < 2:
            continue
        keep = _keeper(cells)
        for index, cell in cells:
            if index != keep:
                del cell.metadata["nbgrader"]
                changes.append(f"cell {index + 1}: duplicate of grade_id {grade_id!r} made ordinary "
                               f"(cell {keep + 1} keeps it)")
    return changes


def repair_duplicate_grade_ids(path_in: str | Path, path_out: str | Path | None = None) -> list[str]:
    """Repair one notebook file; see ``strip_duplicate_grade_ids`` for what is returned.

    With ``path_out`` the result is always written there; without it the notebook is rewritten in place, and only
    when something changed.
    """
    nb = nbformat.read(path_in, as_version=nbformat.NO_CONVERT)
    changes = strip_duplicate_grade_ids(nb)
    if path_out is not None or changes:
        nbformat.write(nb, path_out if path_out is not None else path_in)
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder.repair",
        description="Make nbgrader grade_ids unique again in submissions where a cell was copied and pasted.")
    parser.add_argument("paths", nargs="+", type=Path,
                        help="notebooks, or folders searched for notebooks (e.g. submitted/); repaired in place")
    parser.add_argument("-o", "--output", type=Path, help="write the repaired notebook here (one notebook only)")
    args = parser.parse_args(argv)

    notebooks = []
    for path in args.paths:
        if path.is_dir():
            notebooks += sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        elif path.is_file():
            notebooks.append(path)
        else:
            parser.error(f"{path}: no such file or folder")
    if args.output is not None and len(notebooks) != 1:
        parser.error("--output needs exactly one notebook")

    unreadable = 0
    for notebook in notebooks:
        try:
            changes = repair_duplicate_grade_ids(notebook, args.output)
        except Exception as e:  # not JSON, not a notebook, unreadable: say so, and repair the others
            print(f"{notebook}: not repaired, it cannot be read as a notebook ({type(e).__name__})", file=sys.stderr)
            unreadable += 1
            continue
        for change in changes:
            print(f"{notebook}: {change}")
    return 1 if unreadable else 0


if __name__ == "__main__":
    raise SystemExit(main())
