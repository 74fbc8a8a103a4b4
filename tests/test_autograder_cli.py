"""``python -m autograder grade|batch|status`` and the lesson graders: scores, JSON and CSV shapes, exit codes, a
batch that hostile notebooks cannot stop, and the real lessons graded end to end on their solutions notebooks."""

from __future__ import annotations

import ast
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from notebooks.build import DEMO_GRADERS, code, demo_notebook, use_demo_checks, write

from autograder.__main__ import main
from autograder.core import checks_for
from autograder.grading import GRADERS, GradingError, find_submissions, grade, infer_lesson, known_lessons

REPO = Path(__file__).resolve().parents[1]
FAST = ["--cell-timeout=2", "--check-timeout=2", f"--graders={DEMO_GRADERS}"]


@pytest.fixture(scope="module", autouse=True)
def demo_checks():
    use_demo_checks()


def demo(tmp_path, name="99_demo/99_demo.ipynb", **kwargs) -> Path:
    return write(tmp_path / name, demo_notebook(**kwargs))


def test_grade_prints_a_table_and_writes_json(tmp_path, capsys):
    notebook = demo(tmp_path, double="def double(x):\n    return x * x", extra=(code("print(undefined)"),))
    assert main(["grade", str(notebook), "--json", str(tmp_path / "grade.json"), *FAST]) == 0
    out = capsys.readouterr().out
    assert "✗ demo.double " in out and "✓ demo.triple " in out and "score: 1/4" in out
    report = json.loads((tmp_path / "grade.json").read_text())
    assert (report["score"], report["max_score"], report["lesson"]) == (1, 4, "99_demo")
    assert report["checks"][0] == {
        "id": "demo.double", "points": 0.0, "max_points": 2, "passed": False, "mistake": "squared",
        "message": "looks like: squared. double(x) adds x to itself; it does not multiply x by itself",
    }  # fmt: skip
    assert [c["id"] for c in report["checks"]] == ["demo.double", "demo.double.hidden", "demo.triple"]
    assert report["problems"] == [
        "cell 3 raised NameError: name 'undefined' is not defined (line 1), its later definitions are missing"
    ]


def test_a_notebook_without_its_graded_cells_is_still_graded(tmp_path):
    cells = [cell for cell in demo_notebook() if not cell.metadata.get("nbgrader", {}).get("grade")]
    report = grade(write(tmp_path / "99_demo.ipynb", cells), graders=DEMO_GRADERS)
    assert report.score == report.max_score == 4


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("99_demo/missing.ipynb", None, "no such file"),
        ("99_demo/broken.ipynb", '{"cells": [', "not valid JSON"),
        ("00_unknown/00_unknown.ipynb", '{"cells": []}', "cannot tell which lesson"),
    ],
)
def test_grade_exits_nonzero_only_when_it_cannot_grade(tmp_path, capsys, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.parent.mkdir(parents=True)
        path.write_text(content)
    assert main(["grade", str(path), *FAST]) == 1
    assert message in capsys.readouterr().err


def test_the_lesson_comes_from_the_folder_or_the_file_name(tmp_path):
    assert infer_lesson(tmp_path / "submitted/alice/99_demo/anything.ipynb", DEMO_GRADERS) == "99_demo"
    assert infer_lesson(tmp_path / "downloads/99_demo-Copy1.ipynb", DEMO_GRADERS) == "99_demo"
    with pytest.raises(GradingError, match="pass --lesson"):
        infer_lesson(tmp_path / "x/notes.ipynb", DEMO_GRADERS)


def test_graders_whose_points_disagree_with_the_checks_cannot_grade(tmp_path):
    graders = tmp_path / "graders"
    graders.mkdir()
    (graders / "conftest.py").write_text((DEMO_GRADERS / "conftest.py").read_text())
    (graders / "test_98_wrong_points.py").write_text(
        "import pytest\n\n@pytest.mark.points(5)\ndef test_triple(grade):\n    grade('demo.triple')\n"
    )
    with pytest.raises(GradingError, match=r"must be marked points\(1\)"):
        grade(demo(tmp_path), lesson="98_wrong_points", graders=graders)


def test_grade_sandbox_command_keeps_the_verdict_out_of_the_notebooks_reach(tmp_path):
    """The whole command, as a grader runs it: a notebook that patches the judge still fails."""
    patch = code("import autograder.core as core, torch\ncore.judge = None\ntorch.allclose = lambda *a, **k: True")
    notebook = demo(tmp_path, double="def double(x):\n    return x + 1", extra=(patch,))
    command = [sys.executable, "-m", "autograder", "grade", str(notebook), "--sandbox", "--json", "g.json", *FAST]
    finished = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    report = json.loads((tmp_path / "g.json").read_text())
    assert (report["score"], report["max_score"]) == (1, 4)  # only triple is right
    assert "max abs error" in report["checks"][0]["message"]


def test_without_bubblewrap_the_sandbox_says_so_and_runs_unisolated_only_when_asked(tmp_path):
    notebook = demo(tmp_path)
    no_bwrap = {**os.environ, "PATH": str(tmp_path)}  # sys.executable is absolute; bwrap is nowhere on this PATH
    command = [sys.executable, "-m", "autograder", "grade", str(notebook), "--sandbox", *FAST]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=120, env=no_bwrap)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        "cannot jail the notebooks' code: bubblewrap (bwrap) is not installed: apt-get install bubblewrap "
        "(or pass --unisolated for a plain process)"
    ]
    weaker = subprocess.run([*command, "--unisolated"], capture_output=True, text=True, timeout=120, env=no_bwrap)
    assert weaker.returncode == 0 and "score: 4/4" in weaker.stdout


def test_batch_grades_every_submission_whatever_the_others_do(tmp_path, capsys):
    submitted = tmp_path / "submitted"
    demo(submitted, "alice/99_demo/99_demo.ipynb")
    demo(submitted, "bob/99_demo/99_demo.ipynb", double="def double(x):\n    os._exit(1)", extra=(code("import os"),))
    demo(submitted, "carol/99_demo/99_demo.ipynb", double="def double(x)\n    return 2 * x")
    demo(submitted, "dave/99_demo/99_demo.ipynb", double="def double(x):\n    while True:\n        pass")
    (submitted / "erin/99_demo").mkdir(parents=True)
    (submitted / "erin/99_demo/99_demo.ipynb").write_text("{ not json")
    out, feedback = tmp_path / "grades.csv", tmp_path / "feedback"
    assert main(["batch", str(submitted), "--out", str(out), "--jobs=2", "--feedback", str(feedback), *FAST]) == 0
    assert "graded 4 of 5 notebooks" in capsys.readouterr().out
    pages = sorted(p.relative_to(feedback).as_posix() for p in feedback.rglob("*.html"))
    assert pages == [f"{s}/99_demo/99_demo.html" for s in ("alice", "bob", "carol", "dave", "erin")]  # no gradebook
    rows = {row["student"]: row for row in csv.DictReader(out.open())}
    assert list(rows["alice"]) == [
        "student", "assignment", "notebook", "score", "max_score", "status", "seconds", "report", "demo.double",
        "demo.double.hidden", "demo.triple",
    ]  # fmt: skip
    assert (rows["alice"]["score"], rows["alice"]["max_score"], rows["alice"]["status"]) == ("4", "4", "graded")
    assert all(float(row["seconds"]) > 0 and "." in row["seconds"] for row in rows.values())
    assert rows["bob"]["score"] == "1"  # triple; double ends its process, in each of its checks
    assert rows["bob"]["report"] == "bob__99_demo__99_demo.json"
    bob = json.loads((tmp_path / "grades_reports" / rows["bob"]["report"]).read_text())
    assert "exited with code 1 while checking demo.double" in bob["checks"][0]["message"]
    assert rows["carol"]["score"] == "1" and "SyntaxError" in rows["carol"]["status"]
    assert rows["dave"]["score"] == "1"
    dave = json.loads((tmp_path / "grades_reports/dave__99_demo__99_demo.json").read_text())
    assert "did not finish in 2 s — an infinite loop?" in dave["checks"][0]["message"]
    assert rows["erin"]["status"].startswith("not graded: ") and "not valid JSON" in rows["erin"]["status"]
    assert rows["erin"]["report"] == "" and not (tmp_path / "grades_reports/erin__99_demo__99_demo.json").exists()
    assert all(row["assignment"] == "99_demo" for row in rows.values())


def test_submissions_are_found_in_nbgrader_and_flat_layouts(tmp_path):
    for name in ["alice/02_attention/02_attention.ipynb", "alice/02_attention/.ipynb_checkpoints/x.ipynb",
                 "bob.ipynb", ".ipynb_checkpoints/bob-checkpoint.ipynb"]:  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    found = [(s, a, p.relative_to(tmp_path).as_posix()) for s, a, p in find_submissions(tmp_path)]
    assert found == [("alice", "02_attention", "alice/02_attention/02_attention.ipynb"), ("bob", "", "bob.ipynb")]


def test_status_is_one_line_per_lesson(tmp_path, capsys):
    lessons = tmp_path / "lessons"
    demo(lessons, triple="def triple(x):\n    raise NotImplementedError()")
    write(lessons / "00_intro/00_intro.ipynb", [code("x = 1")])
    assert main(["status", "--dir", str(lessons), f"--graders={DEMO_GRADERS}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("00_intro") and "not graded: cannot tell which lesson" in lines[0]
    assert lines[1].split() == ["99_demo", "3/4", "2", "of", "3", "checks", "pass;", "next:", "demo.triple"]


# ---- the real lessons ------------------------------------------------------------------------------------------------


def _graded_checks(graders_file: Path) -> dict[str, float]:
    """check id → points, read from the graders file: ``@pytest.mark.points(P)`` over ``grade("id")``."""
    graded = {}
    for function in ast.parse(graders_file.read_text()).body:
        if not isinstance(function, ast.FunctionDef):
            continue
        points = [d.args[0].value for d in function.decorator_list if isinstance(d, ast.Call)
                  and isinstance(d.func, ast.Attribute) and d.func.attr == "points"]  # fmt: skip
        ids = [c.args[0].value for c in ast.walk(function) if isinstance(c, ast.Call)
               and isinstance(c.func, ast.Name) and c.func.id == "grade"]  # fmt: skip
        assert len(points) == len(ids) == 1, f"{function.name}: one points marker and one grade(...) call"
        assert ids[0] not in graded, f"{ids[0]} is graded twice"
        graded[ids[0]] = points[0]
    return graded


@pytest.mark.parametrize("lesson", known_lessons(GRADERS))
def test_each_lesson_grades_every_check_once_for_its_points(lesson):
    graded = _graded_checks(GRADERS / f"test_{lesson}.py")
    assert graded == {check.id: check.points for check in checks_for(lesson)}


@pytest.mark.parametrize("lesson", known_lessons(GRADERS))
@pytest.mark.parametrize("sandbox", [False, True], ids=["in-process", "sandbox"])
def test_each_solutions_notebook_gets_full_marks(lesson, sandbox):
    notebook = REPO / "solutions" / lesson / f"{lesson}.ipynb"
    if not notebook.exists():
        pytest.skip(f"{notebook} is not written yet")
    report = grade(notebook, sandbox=sandbox)
    assert report.problems == []
    assert report.score == report.max_score > 0, report.table()


@pytest.mark.parametrize("lesson", known_lessons(GRADERS))
@pytest.mark.parametrize("sandbox", [False, True], ids=["in-process", "sandbox"])
def test_each_released_lesson_scores_zero_saying_not_implemented_yet(lesson, sandbox):
    notebook = REPO / "lessons" / lesson / f"{lesson}.ipynb"
    if not notebook.exists():
        pytest.skip(f"{notebook} is not generated yet (make release)")
    report = grade(notebook, sandbox=sandbox)
    assert report.max_score > 0 and report.score == 0
    assert {result.message for result in report.checks} == {"not implemented yet"}, report.table()
