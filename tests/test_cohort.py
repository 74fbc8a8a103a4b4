"""A synthetic cohort of lesson 02 (``tests/cohort.py``: 30 learners whose every verdict is planted) graded once by
the real jailed ``batch --gradebook`` in a throwaway course, then nbgrader's export, the class report and the
similarity report read against the plan.

About three to four minutes on two cores (the batch; everything after it takes seconds). Where bubblewrap cannot
jail, the batch runs ``--unisolated`` (these notebooks are ours), except under ``AUTOGRADER_JAIL_REQUIRED`` (CI),
where the jail must be there.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from cohort import LESSON, PASS, TARGETS, UNIMPLEMENTED, build_cohort, plan_cohort
from test_nbgrader_workflow import ENV, _run

from autograder.core import checks_for
from autograder.jail import unavailable_reason

REPO = Path(__file__).resolve().parents[1]
LEARNERS = 30
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def _autograder(course: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=course, env=ENV, capture_output=True,
                            text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    """The cohort in a course of its own (the lesson registered in a fresh gradebook), graded once into the gradebook
    and reported on: (cohort, grades folder, report JSON)."""
    course = tmp_path_factory.mktemp("course")
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(REPO / "solutions" / LESSON, course / "solutions" / LESSON)
    _run(course, "generate_assignment", LESSON, "--log-level=WARN")
    cohort = build_cohort(course / "submitted", LEARNERS)
    isolation = ["--unisolated"] if unavailable_reason() and not os.environ.get("AUTOGRADER_JAIL_REQUIRED") else []
    out = _autograder(course, "batch", "submitted", "--out", "grades/grades.csv", "--jobs=2", "--gradebook",
                      *isolation)  # fmt: skip
    assert f"imported {LEARNERS} notebooks" in out, out
    _autograder(course, "report", "grades", "--out", "report.html")
    return cohort, course / "grades", json.loads((course / "report.json").read_text())


def test_nbgrader_export_agrees_with_the_batch(graded):
    """What the Formgrader shows (nbgrader's own export of the gradebook) is the batch's CSV."""
    cohort, grades, _ = graded
    course = grades.parent
    _run(course, "export", f"--to={course / 'export.csv'}", "--log-level=ERROR")
    with open(course / "export.csv", newline="") as f:
        exported = {row["student_id"]: row for row in csv.DictReader(f)}
    with open(grades / "grades.csv", newline="") as f:
        batch = {row["student"]: row for row in csv.DictReader(f)}
    assert sorted(exported) == sorted(batch) == sorted(cohort.plan)
    for student, row in batch.items():
        assert float(exported[student]["raw_score"]) == float(row["score"]), student
        assert float(exported[student]["max_score"]) == float(row["max_score"]), student
    assert (course / "feedback" / cohort.copies[0] / LESSON / f"{LESSON}.html").is_file()


def _lesson(report: dict) -> dict:
    (lesson,) = report["lessons"]
    assert lesson["lesson"] == LESSON
    return lesson


@pytest.mark.parametrize("n", [LEARNERS, 50])
def test_the_plan_is_a_cohort_worth_testing(n):
    learners, copies = plan_cohort(n)
    assert len(learners) == n and len({learner.name for learner in learners}) == n
    verdicts = Counter(v for learner in learners for v in learner.expected().values())
    assert verdicts[PASS] and verdicts[UNIMPLEMENTED] and len(verdicts) > 15  # passes, stubs, many mistakes
    for i, a in enumerate(learners):
        for b in learners[i + 1 :]:
            differ = sum(a.choices[t] != b.choices[t] for t in TARGETS)
            assert differ >= 2 or {a.name, b.name} == set(copies), (a.name, b.name)


def test_every_learner_is_graded_as_planned(graded):
    cohort, grades, _ = graded
    with open(grades / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(cohort.plan)
    for student, plan in cohort.plan.items():
        assert rows[student]["status"] == "graded", rows[student]["status"]
        for check in checks_for(LESSON):
            points = check.points if plan[check.id] == PASS else 0
            assert float(rows[student][check.id]) == points, (student, check.id)


def test_the_report_counts_what_was_planted(graded):
    cohort, _, report = graded
    lesson = _lesson(report)
    assert lesson["graded"] == lesson["submissions"] == LEARNERS and not lesson["not_graded"]
    for check in lesson["checks"]:
        planned = Counter(plan[check["id"]] for plan in cohort.plan.values())
        assert check["passed"] == planned.pop(PASS, 0), check["id"]
        assert check["pass_rate"] == round(check["passed"] / LEARNERS, 4)
        assert check["unimplemented"] == planned.pop(UNIMPLEMENTED, 0), check["id"]
        assert {m["name"]: m["learners"] for m in check["mistakes"]} == dict(planned), check["id"]
        assert check["other_failures"] == 0
    assert {c["id"] for c in lesson["checks"]} == {c.id for c in checks_for(LESSON)}


def test_the_report_ranks_the_mistakes_by_learners(graded):
    cohort, _, report = graded
    made = Counter()
    for plan in cohort.plan.values():
        made.update({(check_id.removesuffix(".hidden"), verdict) for check_id, verdict in plan.items()
                     if verdict not in (PASS, UNIMPLEMENTED)})
    ranked = _lesson(report)["mistakes"]
    assert {(m["check"], m["name"]): m["learners"] for m in ranked} == dict(made)
    assert [m["learners"] for m in ranked] == sorted(made.values(), reverse=True)
    unimplemented = {u["check"]: u["learners"] for u in _lesson(report)["unimplemented"]}
    planned = Counter(check_id for plan in cohort.plan.values() for check_id, v in plan.items() if v == UNIMPLEMENTED)
    assert unimplemented == dict(planned)


def test_the_report_has_the_scores_and_a_picture(graded):
    cohort, grades, report = graded
    points = {c.id: c.points for c in checks_for(LESSON)}
    expected = {s: sum(points[c] for c, v in plan.items() if v == PASS) for s, plan in cohort.plan.items()}
    assert _lesson(report)["scores"] == expected
    page = (grades.parent / "report.html").read_text()
    assert "data:image/png;base64," in page and "mask applied after softmax" in page


def _digest(paths: list[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(paths) if p.is_file()}


@pytest.fixture(scope="module")
def similarity(graded):
    cohort, grades, _ = graded
    course = grades.parent
    before = _digest([*grades.rglob("*"), course / "gradebook.db"])
    out = course / "similarity.html"
    _autograder(course, "similarity", "submitted", f"--lesson={LESSON}", f"--out={out}")
    assert _digest([*grades.rglob("*"), course / "gradebook.db"]) == before  # it flags; it never touches a grade
    return json.loads(out.with_suffix(".json").read_text())


def _alike(match: dict) -> float:
    return min(match["first_share"], match["second_share"])


def test_the_planted_copies_are_the_top_pair(graded, similarity):
    cohort, _, _ = graded
    top, runner_up = similarity["pairs"][:2]
    assert {top["first"], top["second"]} == set(cohort.copies)
    assert _alike(top) > 0.99 > _alike(runner_up)
    assert len(similarity["pairs"]) == LEARNERS * (LEARNERS - 1) // 2


def test_learners_built_from_the_solution_are_the_most_alike_to_it(graded, similarity):
    cohort, _, _ = graded
    alike = {m["first"]: _alike(m) for m in similarity["solutions"]}
    built = {learner.name for learner in cohort.learners if learner.from_solution}
    assert built and len(alike) == LEARNERS
    assert min(alike[name] for name in built) > max(v for name, v in alike.items() if name not in built)
