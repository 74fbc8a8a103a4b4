"""The class report: what a cohort got right and what it got wrong, per lesson and check.

    python -m autograder report grades/ --out report.html       # and report.json next to it

It reads what grading left behind, in either of two forms:

- a ``batch`` (``read_batch``): its CSV and the JSON reports in ``<csv stem>_reports/``, which name each failed
  check's mistake;
- nbgrader's ``autograded/`` folder (``read_autograded``): each graded cell's output is the check's one line,
  ``✓ attention.softmax (1/1): correct`` printed, or ``AssertionError: ✗ attention.softmax (0/1): looks like: no max
  subtraction. <hint>`` raised, so the same diagnoses can be read back from the notebooks.

Then, per lesson (``summarize``): each check's pass rate, the named mistakes ranked by how many learners made them
("38% mask applied after softmax"), the checks most often left unimplemented, the score distribution (a histogram,
drawn with matplotlib's Agg canvas and embedded in the HTML as a PNG) and the slowest submissions. The HTML is one
self-contained file; every string that came from a submission is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .core import VERDICT_LINE, Check, Result, get_check
from . import grading

UNIMPLEMENTED = "not implemented yet"  # the message of a check whose object still raises NotImplementedError
SLOWEST = 5


@dataclass
class Submission:
    """One learner's notebook for one lesson, as graded: ``checks`` is empty when it could not be graded."""

    student: str
    lesson: str
    notebook: str
    status: str
    score: float | None = None
    max_score: float | None = None
    seconds: float | None = None
    checks: list[Result] = field(default_factory=list)


def read_batch(csv_path: str | os.PathLike) -> list[Submission]:
    """The submissions of one ``batch`` CSV, each graded one with the checks of its JSON report."""
    return [
        Submission(row.student, row.assignment, row.notebook, row.status,
                   row.report["score"] if row.report else None, row.report["max_score"] if row.report else None,
                   row.seconds, [Result(**check) for check in row.report["checks"]] if row.report else [])
        for row in grading.read_batch(csv_path)
    ]  # fmt: skip


def _known(check_id: str) -> Check | None:
    try:
        return get_check(check_id)
    except KeyError:
        return None


def _mistake_of(check_id: str, message: str) -> str | None:
    """The mistake a failed check's message names (``looks like: <name>. <hint>``), matched against the check's
    catalogue where the check is known, since a name may hold a full stop."""
    if not message.startswith("looks like: "):
        return None
    check = _known(check_id)
    names = [m.name for m in check.mistakes] if check else []
    named = next((name for name in names if message.startswith(f"looks like: {name}.")), None)
    return named or message.removeprefix("looks like: ").split(". ", 1)[0]


def _cell_result(cell: dict) -> Result | None:
    """The check's verdict from an autograded graded cell, scored as nbgrader scores it: the cell failed if and only
    if it raised. The verdict's words are the check's line: the one it raised, or else the last one printed (a
    learner's function may print a line of its own while it is probed, before the check's); a cell that raised
    something else (a NameError for an object never defined) fails with that error."""
    called = re.search(r'\bcheck\(\s*["\']([^"\']+)["\']', "".join(cell["source"]))
    if not called:
        return None
    check_id, most = called.group(1), float(cell["metadata"]["nbgrader"].get("points", 0))
    outputs = cell.get("outputs", [])
    errors = [f"{o.get('ename')}: {o.get('evalue')}" for o in outputs if o["output_type"] == "error"]
    printed = "".join("".join(o.get("text", "")) for o in outputs if o["output_type"] == "stream").splitlines()
    lines = [found for line in (errors[:1] if errors else printed) if (found := VERDICT_LINE.match(line.strip()))
             and found.group(2) == check_id]
    if errors and not lines:
        return Result(check_id, 0.0, most, False, None, errors[0])
    if not lines:
        return Result(check_id, most, most, True, None, "passed (no check line in its output)")
    passed, message = lines[-1].group(1) == "✓" and not errors, lines[-1].group(5)
    return Result(check_id, most if passed else 0.0, most, passed, None if passed else _mistake_of(check_id, message),
                  message)


def read_autograded(folder: str | os.PathLike) -> list[Submission]:
    """The submissions in nbgrader's ``autograded/<student>/<lesson>/`` folder, each check from its graded cell."""
    submissions = []
    for student, lesson, path in grading.find_submissions(folder):
        cells = json.loads(path.read_text())["cells"]
        graded = [c for c in cells if c["metadata"].get("nbgrader", {}).get("grade") and c["cell_type"] == "code"
                  and not c["metadata"]["nbgrader"].get("solution")]
        checks = [r for r in map(_cell_result, graded) if r is not None]
        submissions.append(Submission(student, lesson, str(path.relative_to(folder)), "graded",
                                      sum(r.points for r in checks), sum(r.max_points for r in checks), None, checks))
    return submissions


def read_grades(folder: str | os.PathLike) -> list[Submission]:
    """Every batch CSV directly in ``folder``; or, where there is none, ``folder`` read as nbgrader's autograded/."""
    folder = Path(folder)
    tables = sorted(folder.glob("*.csv"))
    if tables:
        return [s for table in tables for s in read_batch(table)]
    return read_autograded(folder)


# ---- what the class did -------------------------------------------------------------------------------------------


def _share(count: int, total: int) -> float:
    return round(count / total, 4) if total else 0.0


def summarize(submissions: list[Submission]) -> dict:
    """The class report as JSON-ready data: per lesson, its submissions, checks, mistakes, scores and slowest."""
    lessons = []
    for lesson in sorted({s.lesson for s in submissions}):
        mine = [s for s in submissions if s.lesson == lesson]
        graded = [s for s in mine if s.checks]
        n = len(graded)
        check_ids = list(dict.fromkeys(r.id for s in graded for r in s.checks))
        checks = []
        for check_id in check_ids:
            results = [r for s in graded for r in s.checks if r.id == check_id]
            mistakes = Counter(r.mistake for r in results if r.mistake)
            unimplemented = sum(r.message == UNIMPLEMENTED for r in results)
            passed = sum(r.passed for r in results)
            checks.append({
                "id": check_id, "max_points": max(r.max_points for r in results), "learners": len(results),
                "passed": passed, "pass_rate": _share(passed, n), "unimplemented": unimplemented,
                "mistakes": [{"name": name, "learners": k, "share": _share(k, n)}
                             for name, k in mistakes.most_common()],
                "other_failures": len(results) - passed - unimplemented - sum(mistakes.values()),
            })  # fmt: skip
        # a learner who makes a mistake in an object makes it once, whether the visible, the hidden or both checks
        # name it: the ranking counts learners per (object's check, mistake)
        made = Counter()
        for s in graded:
            made.update({(r.id.removesuffix(".hidden"), r.mistake) for r in s.checks if r.mistake})
        ranked = [{"check": check, "name": name, "learners": k, "share": _share(k, n)}
                  for (check, name), k in sorted(made.items(), key=lambda item: (-item[1], item[0]))]
        unfinished = sorted((c for c in checks if c["unimplemented"]), key=lambda c: (-c["unimplemented"], c["id"]))
        timed = sorted((s for s in mine if s.seconds is not None), key=lambda s: -s.seconds)[:SLOWEST]
        lessons.append({
            "lesson": lesson, "submissions": len(mine), "graded": n,
            "max_score": max((s.max_score for s in graded if s.max_score is not None), default=None),
            "scores": {s.student: s.score for s in graded},
            "not_graded": [{"student": s.student, "notebook": s.notebook, "status": s.status}
                           for s in mine if not s.checks],
            "checks": checks, "mistakes": ranked,
            "unimplemented": [{"check": c["id"], "learners": c["unimplemented"],
                               "share": _share(c["unimplemented"], n)} for c in unfinished],
            "slowest": [{"student": s.student, "notebook": s.notebook, "seconds": s.seconds, "status": s.status}
                        for s in timed],
        })  # fmt: skip
    return {"lessons": lessons}


# ---- the HTML -----------------------------------------------------------------------------------------------------


def score_histogram(scores: list[float], max_score: float | None, title: str) -> str:
    """A histogram of the scores as a base64 PNG, drawn without pyplot (no backend, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 2.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    top = max_score if max_score else max(scores, default=1) or 1
    bins = [b - 0.5 for b in range(int(top) + 2)] if top <= 40 else 20  # one bar per whole point, when few
    axes.hist(scores, bins=bins, range=(0, top), color="#4878a8", edgecolor="white")
    axes.set_xlabel("score")
    axes.set_ylabel("learners")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    png = io.BytesIO()
    figure.savefig(png, format="png")
    return base64.b64encode(png.getvalue()).decode("ascii")


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table; the cells are already escaped."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:75em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f0f0f0}.bar{display:inline-block;height:.8em;background:#4878a8;vertical-align:middle}
.muted{color:#777}"""


def render_html(summary: dict) -> str:
    """The class report as one self-contained HTML page."""
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Class report</title>"
             f"<style>{STYLE}</style></head><body><h1>Class report</h1>"]
    for lesson in summary["lessons"]:
        n = lesson["graded"]
        parts.append(f"<h2>{e(lesson['lesson'])}</h2><p>{lesson['submissions']} submissions, {n} graded.</p>")
        if lesson["scores"]:
            picture = score_histogram(list(lesson["scores"].values()), lesson["max_score"],
                                      f"{lesson['lesson']}: scores of {n} learners")
            parts.append(f"<img alt='score distribution' src='data:image/png;base64,{picture}'>")
        parts.append("<h3>Mistakes, by how many learners made them</h3>")
        parts.append(_table(["learners", "mistake", "check"], [
            [f"{_percent(m['share'])} ({m['learners']} of {n})", e(m["name"]), e(m["check"])]
            for m in lesson["mistakes"]]) if lesson["mistakes"] else "<p class='muted'>none named</p>")
        parts.append("<h3>Left unimplemented</h3>")
        parts.append(_table(["learners", "check"], [
            [f"{_percent(u['share'])} ({u['learners']} of {n})", e(u["check"])] for u in lesson["unimplemented"]
        ]) if lesson["unimplemented"] else "<p class='muted'>every check was attempted</p>")
        parts.append("<h3>Checks</h3>")
        parts.append(_table(["check", "points", "pass rate", "", "unimplemented", "named mistakes", "other failures"], [
            [e(c["id"]), f"{c['max_points']:g}", _percent(c["pass_rate"]),
             f"<span class='bar' style='width:{100 * c['pass_rate']:.0f}px'></span>", str(c["unimplemented"]),
             "<br>".join(f"{m['learners']} × {e(m['name'])}" for m in c["mistakes"]), str(c["other_failures"])]
            for c in lesson["checks"]]))  # fmt: skip
        if lesson["slowest"]:
            parts.append("<h3>Slowest submissions</h3>")
            parts.append(_table(["seconds", "student", "notebook", "status"], [
                [f"{s['seconds']:.1f}", e(s["student"]), e(s["notebook"]), e(s["status"])]
                for s in lesson["slowest"]]))  # fmt: skip
        if lesson["not_graded"]:
            parts.append("<h3>Not graded</h3>")
            parts.append(_table(["student", "notebook", "why"], [
                [e(s["student"]), e(s["notebook"]), e(s["status"])] for s in lesson["not_graded"]]))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(grades: list[str | os.PathLike], out_html: str | os.PathLike) -> dict:
    """Read every folder of ``grades``, write the HTML report and its JSON (same name, ``.json``); return the data."""
    summary = summarize([s for folder in grades for s in read_grades(folder)])
    out_html = Path(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(render_html(summary), encoding="utf-8")
    out_html.with_suffix(".json").write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8")
    return summary
