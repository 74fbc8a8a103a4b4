"""autograder.repair: a copied and pasted cell leaves its nbgrader grade_id on two cells; the repair keeps it on one.

The notebooks here are built by hand, shaped like a released lesson (solution cell, locked graded cell, checksums
as nbgrader writes them). tests/test_nbgrader_workflow.py shows a repaired submission going through autograde.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from nbgrader.utils import compute_checksum

from autograder.repair import main, repair_duplicate_grade_ids, strip_duplicate_grade_ids


def _released_cell(source: str, **nbgrader) -> nbformat.NotebookNode:
    cell = new_code_cell(source, metadata={"nbgrader": {"schema_version": 3, **nbgrader}})
    cell.metadata.nbgrader["checksum"] = compute_checksum(cell)
    return cell


def _lesson() -> nbformat.NotebookNode:
    """Setup, an exercise, and its graded test, as `nbgrader generate_assignment` releases them."""
    return new_notebook(cells=[
        new_code_cell("import torch"),
        new_markdown_cell("Write `double`."),
        _released_cell("def double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()",
                       grade=False, solution=True, locked=False, grade_id="double"),
        _released_cell("assert double(3) == 6", grade=True, solution=False, locked=True, points=1.0,
                       grade_id="test_double"),
    ])


def _grade_ids(nb: nbformat.NotebookNode) -> list[str | None]:
    return [cell.metadata.get("nbgrader", {}).get("grade_id") for cell in nb.cells]


def _paste(nb: nbformat.NotebookNode, index: int, at: int) -> None:
    """What JupyterLab's copy and paste does: the same source and metadata in a new cell (with a new cell id)."""
    pasted = copy.deepcopy(nb.cells[index])
    pasted.id = f"pasted-{len(nb.cells)}"
    nb.cells.insert(at, pasted)


def test_a_pasted_exercise_cell_becomes_ordinary_and_the_first_copy_keeps_the_id() -> None:
    nb = _lesson()
    nb.cells[2].source = "def double(x):\n    return x + x"
    _paste(nb, 2, at=3)
    nb.cells[3].source = "def double(x):\n    return 2 * x"

    changes = strip_duplicate_grade_ids(nb)

    assert changes == ["cell 4: duplicate of grade_id 'double' made ordinary (cell 3 keeps it)"]
    assert _grade_ids(nb) == [None, None, "double", None, "test_double"]
    assert "nbgrader" not in nb.cells[3].metadata  # removed, not emptied: an empty dict crashes OverwriteCells
    assert nb.cells[3].source == "def double(x):\n    return 2 * x"  # the learner's code is untouched


def test_a_locked_cell_keeps_its_id_on_the_copy_still_as_released() -> None:
    nb = _lesson()
    _paste(nb, 3, at=3)  # pasted above the original...
    nb.cells[3].source = "assert True"  # ...and edited (outside JupyterLab, which keeps locked cells read-only)

    changes = strip_duplicate_grade_ids(nb)

    assert changes == ["cell 4: duplicate of grade_id 'test_double' made ordinary (cell 5 keeps it)"]
    assert _grade_ids(nb) == [None, None, "double", None, "test_double"]
    assert nb.cells[4].source == "assert double(3) == 6"


def test_every_extra_copy_is_repaired_and_the_notebook_then_has_unique_ids() -> None:
    nb = _lesson()
    for _ in range(2):
        _paste(nb, 2, at=3)
        _paste(nb, len(nb.cells) - 1, at=len(nb.cells))

    assert len(strip_duplicate_grade_ids(nb)) == 4
    ids = [grade_id for grade_id in _grade_ids(nb) if grade_id is not None]
    assert sorted(ids) == ["double", "test_double"]
    assert strip_duplicate_grade_ids(nb) == []


def test_files_are_rewritten_only_when_something_changed(tmp_path: Path) -> None:
    clean = tmp_path / "clean.ipynb"
    nbformat.write(_lesson(), clean)
    before = clean.read_bytes()
    clean.chmod(0o444)  # a write would fail
    assert repair_duplicate_grade_ids(clean) == []
    assert clean.read_bytes() == before

    broken = _lesson()
    _paste(broken, 2, at=3)
    pasted, out = tmp_path / "pasted.ipynb", tmp_path / "out" / "repaired.ipynb"
    nbformat.write(broken, pasted)
    out.parent.mkdir()
    assert len(repair_duplicate_grade_ids(pasted, out)) == 1
    assert _grade_ids(nbformat.read(pasted, as_version=4)).count("double") == 2  # the input is left alone
    assert _grade_ids(nbformat.read(out, as_version=4)).count("double") == 1

    assert len(repair_duplicate_grade_ids(pasted)) == 1  # in place
    assert _grade_ids(nbformat.read(pasted, as_version=4)).count("double") == 1


def test_the_command_repairs_every_submission_below_a_folder(tmp_path: Path, capsys) -> None:
    for student in ("ada", "bob"):
        nb = _lesson()
        if student == "bob":
            _paste(nb, 2, at=3)
        folder = tmp_path / "submitted" / student / "02_attention"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / "02_attention.ipynb")

    assert main([str(tmp_path / "submitted")]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "bob" in lines[0] and "'double'" in lines[0]
    bob = nbformat.read(tmp_path / "submitted/bob/02_attention/02_attention.ipynb", as_version=4)
    assert _grade_ids(bob).count("double") == 1


def test_an_unreadable_notebook_is_reported_and_the_others_are_still_repaired(tmp_path: Path, capsys) -> None:
    submitted = tmp_path / "submitted"
    for student in ("ada", "zed"):
        (submitted / student / "02_attention").mkdir(parents=True)
    (submitted / "ada/02_attention/02_attention.ipynb").write_text("{ not json")
    nb = _lesson()
    _paste(nb, 2, at=3)
    nbformat.write(nb, submitted / "zed/02_attention/02_attention.ipynb")

    assert main([str(submitted)]) == 1

    captured = capsys.readouterr()
    assert "ada/02_attention/02_attention.ipynb: not repaired, it cannot be read as a notebook" in captured.err
    assert "zed" in captured.out  # sorted after the unreadable one, and repaired all the same
    zed = nbformat.read(submitted / "zed/02_attention/02_attention.ipynb", as_version=4)
    assert _grade_ids(zed).count("double") == 1
