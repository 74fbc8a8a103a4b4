"""The class report and the similarity report on small hand-made inputs (fast): a batch's CSV and JSON reports,
nbgrader's autograded notebooks, escaping, and what copydetect is and is not shown. ``tests/test_cohort.py`` runs
both on a graded cohort."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import nbformat
from notebooks.build import answer, graded, write

from autograder.__main__ import main
from autograder.report import read_autograded, read_batch, render_html, summarize, write_report
from autograder.similarity import compare, graded_code

HOSTILE = "<img src=x onerror=alert(1)>"  # a name or message a learner wrote; no "/", so it can name a folder
COLUMNS = ["student", "assignment", "notebook", "score", "max_score", "status", "seconds", "report"]


def _check(check_id, points, most, mistake=None, message=None):
    passed = points == most
    return {"id": check_id, "points": points, "max_points": most, "passed": passed, "mistake": mistake,
            "message": message or ("correct" if passed else f"looks like: {mistake}. a hint")}


def _batch(folder: Path, learners: dict[str, list[dict] | str], seconds=None) -> Path:
    """A batch's CSV and JSON reports: a learner is its checks, or a 'not graded: …' status."""
    reports = folder / "grades_reports"
    reports.mkdir(parents=True)
    rows, ids = [], []
    for i, (student, checks) in enumerate(learners.items()):
        notebook = f"{student}/02_attention/02_attention.ipynb"
        name = f"{student}__02_attention__02_attention.json"
        row = {"student": student, "assignment": "02_attention", "notebook": notebook, "score": "", "max_score": "",
               "status": checks if isinstance(checks, str) else "graded",
               "seconds": f"{(seconds or {}).get(student, 1.0)}", "report": ""}  # fmt: skip
        if not isinstance(checks, str):
            score, most = sum(c["points"] for c in checks), sum(c["max_points"] for c in checks)
            row.update(score=f"{score:g}", max_score=f"{most:g}", report=name)
            row.update({c["id"]: f"{c['points']:g}" for c in checks})
            ids += [c["id"] for c in checks if c["id"] not in ids]
            (reports / name).write_text(json.dumps({"lesson": "02_attention", "score": score, "max_score": most,
                                                    "checks": checks, "problems": []}))
        rows.append(row)
    with open(folder / "grades.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, [*COLUMNS, *ids], restval="")
        writer.writeheader()
        writer.writerows(rows)
    return folder / "grades.csv"


COHORT = {
    "ada": [_check("attention.softmax", 1, 1), _check("attention.causal_mask", 1, 1)],
    "bob": [_check("attention.softmax", 0, 1, "no max subtraction"), _check("attention.causal_mask", 1, 1)],
    "cy": [_check("attention.softmax", 0, 1, "no max subtraction"),
           _check("attention.causal_mask", 0, 1, message="not implemented yet")],
    "dee": [_check("attention.softmax", 0, 1, "wrong dim"),
            _check("attention.causal_mask", 0, 1, message="max abs error 1 at (0, 1)")],
    HOSTILE: "not graded: the notebook is not valid JSON",
}


def test_a_batch_is_summarized_per_check(tmp_path):
    summary = summarize(read_batch(_batch(tmp_path, COHORT, seconds={"cy": 9.5, "bob": 3.0})))
    (lesson,) = summary["lessons"]
    assert (lesson["submissions"], lesson["graded"], lesson["max_score"]) == (5, 4, 2)
    softmax, mask = lesson["checks"]
    assert (softmax["passed"], softmax["pass_rate"], softmax["unimplemented"]) == (1, 0.25, 0)
    assert softmax["other_failures"] == 0
    assert softmax["mistakes"] == [{"name": "no max subtraction", "learners": 2, "share": 0.5},
                                   {"name": "wrong dim", "learners": 1, "share": 0.25}]
    assert (mask["passed"], mask["unimplemented"], mask["other_failures"], mask["mistakes"]) == (2, 1, 1, [])
    assert lesson["mistakes"][0] == {"check": "attention.softmax", "name": "no max subtraction", "learners": 2,
                                     "share": 0.5}
    assert lesson["unimplemented"] == [{"check": "attention.causal_mask", "learners": 1, "share": 0.25}]
    assert lesson["scores"] == {"ada": 2, "bob": 1, "cy": 0, "dee": 0}
    assert [s["student"] for s in lesson["slowest"][:2]] == ["cy", "bob"]
    assert lesson["not_graded"] == [{"student": HOSTILE, "notebook": f"{HOSTILE}/02_attention/02_attention.ipynb",
                                     "status": "not graded: the notebook is not valid JSON"}]


def test_a_mistake_is_counted_once_per_learner_across_visible_and_hidden(tmp_path):
    both = [_check("attention.softmax", 0, 1, "wrong dim"), _check("attention.softmax.hidden", 0, 1, "wrong dim")]
    (lesson,) = summarize(read_batch(_batch(tmp_path, {"ada": both}))).get("lessons")
    assert lesson["mistakes"] == [{"check": "attention.softmax", "name": "wrong dim", "learners": 1, "share": 1.0}]


def test_the_html_escapes_what_learners_wrote_and_embeds_its_picture(tmp_path):
    cohort = {**COHORT, "eve": [_check("attention.softmax", 0, 1, HOSTILE), _check("attention.causal_mask", 1, 1)]}
    page = render_html(summarize(read_batch(_batch(tmp_path, cohort))))
    assert HOSTILE not in page and "&lt;img src=x" in page
    assert page.count("data:image/png;base64,") == 1 and "src='http" not in page


def test_the_command_writes_html_and_json(tmp_path, capsys):
    _batch(tmp_path / "grades", COHORT)
    assert main(["report", str(tmp_path / "grades"), "--out", str(tmp_path / "out" / "report.html")]) == 0
    assert "4 graded submissions" in capsys.readouterr().out
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data == write_report([tmp_path / "grades"], tmp_path / "again.html")
    assert (tmp_path / "out" / "report.html").read_text().startswith("<!doctype html>")


# ---- nbgrader's autograded notebooks ----------------------------------------------------------------------------


def _output_cell(source: str, grade_id: str, points: float, outputs: list[dict]) -> nbformat.NotebookNode:
    cell = graded(source, grade_id, points)
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def _stream(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def _error(ename, evalue):
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}


def test_autograded_notebooks_are_read_from_their_graded_cells(tmp_path):
    write(tmp_path / "ada" / "02_attention" / "02_attention.ipynb", [
        answer("def softmax(x, dim=-1):\n    ...", "solution_softmax"),
        _output_cell('check("attention.softmax", softmax)', "test_softmax", 1,
                     [_stream("✓ attention.softmax (1/1): correct\n")]),
        _output_cell('### BEGIN HIDDEN TESTS\ncheck("attention.softmax.hidden", softmax)\n### END HIDDEN TESTS',
                     "test_softmax_hidden", 1,
                     [_error("AssertionError", "✗ attention.softmax.hidden (0/1): looks like: no max subtraction. "
                                               "exp(1000) is inf. Subtract the max.")]),
        _output_cell('check("attention.causal_mask", causal_mask)', "test_causal_mask", 1,
                     [_error("NameError", "name 'causal_mask' is not defined")]),
        _output_cell('check("attention.average_past", average_past)', "test_average_past", 1,
                     [_error("AssertionError", "✗ attention.average_past (0/1): not implemented yet")]),
        _output_cell('check("attention.causal_self_attention", CausalSelfAttention)', "test_csa", 3,
                     [_stream("✓ attention.causal_self_attention (3/3): correct\n"),  # printed by the learner's code
                      _error("AssertionError", "✗ attention.causal_self_attention (0/3): looks like: missing output "
                                               "projection. hint")]),
    ])  # fmt: skip
    (submission,) = read_autograded(tmp_path)
    assert (submission.student, submission.lesson) == ("ada", "02_attention")
    assert (submission.score, submission.max_score) == (1, 7)
    by_id = {r.id: r for r in submission.checks}
    assert by_id["attention.softmax"].passed
    assert by_id["attention.softmax.hidden"].mistake == "no max subtraction"
    assert not by_id["attention.causal_mask"].passed and "NameError" in by_id["attention.causal_mask"].message
    assert by_id["attention.average_past"].message == "not implemented yet"
    assert by_id["attention.causal_self_attention"].mistake == "missing output projection"
    (lesson,) = write_report([tmp_path], tmp_path / "report.html")["lessons"]
    assert {m["name"] for m in lesson["mistakes"]} == {"no max subtraction", "missing output projection"}
    assert lesson["unimplemented"] == [{"check": "attention.average_past", "learners": 1, "share": 1.0}]


# ---- similarity ---------------------------------------------------------------------------------------------------

RELEASED = '''def softmax(x, dim=-1):
    """Numerically stable softmax of x along dim."""
    # YOUR CODE HERE
    raise NotImplementedError()
'''
STABLE = """    shifted = x - x.max(dim=dim, keepdim=True).values  # no overflow
    e = shifted.exp()
    return e / e.sum(dim=dim, keepdim=True)
"""
RENAMED = """    z = x - x.max(dim=dim, keepdim=True).values
    # a different comment
    ez = z.exp()
    return ez / ez.sum(dim=dim, keepdim=True)
"""
LOGSUMEXP = "    return torch.exp(x - torch.logsumexp(x, dim=dim, keepdim=True))\n"


def _answered(body: str) -> str:
    return RELEASED.replace("    # YOUR CODE HERE\n    raise NotImplementedError()\n", body)


def test_graded_code_is_the_answer_cells_in_grade_id_order(tmp_path):
    first = write(tmp_path / "a.ipynb", [answer("B = 2", "solution_b"), graded("check()", "test_b", 1),
                                         answer("A = 1", "solution_a")])
    second = write(tmp_path / "b.ipynb", [answer("A = 1", "solution_a"), answer("B = 2", "solution_b")])
    assert graded_code(first) == graded_code(second) == "A = 1\n\nB = 2\n"


def test_renamed_code_is_alike_other_code_is_not_and_boilerplate_is_no_evidence():
    submissions = {"copy": _answered(RENAMED), "original": _answered(STABLE), "other": _answered(LOGSUMEXP),
                   "stub": RELEASED * 2, "stub too": RELEASED * 2}  # a stub repeated is boilerplate each time
    result = compare(submissions, {"solution": _answered(STABLE)}, boilerplate=RELEASED * 2)
    top = result["pairs"][0]
    assert {top.first, top.second} == {"copy", "original"} and top.first_share == top.second_share == 1.0
    shares = {frozenset((m.first, m.second)): m.rank[0] for m in result["pairs"]}
    assert shares[frozenset(("stub", "stub too"))] == 0 and shares[frozenset(("original", "other"))] < 0.5
    assert [m.first for m in result["solutions"][:2]] in (["copy", "original"], ["original", "copy"])
    assert "<mark class='a'>" in top.first_html


def test_the_similarity_command_escapes_names_and_writes_json(tmp_path, capsys):
    for student, body in ((HOSTILE, STABLE), ("bob", RENAMED)):
        write(tmp_path / "submitted" / student / "99_x" / "99_x.ipynb", [answer(_answered(body), "solution_softmax")])
    write(tmp_path / "solutions" / "99_x" / "99_x.ipynb", [answer(_answered(STABLE), "solution_softmax")])
    write(tmp_path / "lessons" / "99_x" / "99_x.ipynb", [answer(RELEASED, "solution_softmax")])
    out = tmp_path / "similarity.html"
    assert main(["similarity", str(tmp_path / "submitted"), "--lesson=99_x", f"--out={out}",
                 f"--solutions={tmp_path / 'solutions'}", f"--release={tmp_path / 'lessons'}"]) == 0
    assert HOSTILE not in out.read_text() and "&lt;img src=x" in out.read_text()
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["submissions"] == 2 and data["pairs"][0]["first_share"] == 1.0
    assert main(["similarity", str(tmp_path / "submitted"), "--lesson=99_x", f"--out={out}",
                 f"--release={tmp_path / 'nowhere'}"]) == 1
    assert "no released notebook" in capsys.readouterr().err


def test_the_command_line_imports_neither_matplotlib_nor_copydetect():
    """``grade`` runs once per notebook in a batch: matplotlib and copydetect are imported only by their commands."""
    code = "import sys, autograder.__main__; print('copydetect' in sys.modules or 'matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
