"""Feedback for each learner from the hardened grader: one self-contained HTML page per graded notebook, at
``<folder>/<student>/<assignment>/<notebook>.html``, where nbgrader's ``generate_feedback`` puts its own.

The page lists every check with its verdict (✓/✗), points and message (the diagnosis, or the named mistake and its
hint), the total, and the problems met while running the notebook (a cell that raised, a definition left out). It
shows no probe inputs and no hidden tests: a report never holds them, and hidden checks appear by verdict and
message only, as everywhere else. Everything in a report may come from the learner (an exception's message is
their text), so every string is escaped: a ``<script>`` in a message is shown, not run.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from .core import format_points
from .grading import BatchRow

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 0.35rem 0.6rem; border-bottom: 1px solid #ddd; }
td.verdict { font-size: 1.2rem; } tr.passed td.verdict { color: #1a7f37; } tr.failed td.verdict { color: #cf222e; }
td.points { white-space: nowrap; } code { font-size: 0.95em; } .not-graded { color: #cf222e; }
"""


def feedback_file(row: BatchRow, folder: str | Path) -> Path:
    """Where a row's page goes: named after its notebook in nbgrader's layout, after its lesson otherwise."""
    notebook = Path(row.notebook)
    name = notebook.stem if len(notebook.parts) == 3 else row.assignment
    return Path(folder) / row.student / row.assignment / f"{name}.html"


def feedback_html(row: BatchRow) -> str:
    """One notebook's feedback page."""
    e = html.escape
    title = f"{row.assignment}: feedback for {row.student}"
    body = [f"<h1>{e(title)}</h1>", f"<p>Notebook: <code>{e(Path(row.notebook).name)}</code></p>"]
    report = row.report
    if report is None:  # the reason names the notebook by its path on the grader's machine: by its name here
        name = Path(row.notebook).name
        reason = re.sub(r"\S*" + re.escape(row.notebook), lambda _: name, row.status.removeprefix("not graded: "))
        body.append(f'<p class="not-graded">Your notebook could not be graded: {e(reason)}</p>')
        body.append("<p><strong>Score: 0</strong></p>")
    else:
        score = f"{format_points(report['score'])} / {format_points(report['max_score'])}"
        body.append(f"<p><strong>Score: {score}</strong></p>")
        body.append("<table><tr><th></th><th>check</th><th>points</th><th>diagnosis</th></tr>")
        for check in report["checks"]:
            verdict = ("passed", "✓") if check["passed"] else ("failed", "✗")
            body.append(
                f'<tr class="{verdict[0]}"><td class="verdict">{verdict[1]}</td><td><code>{e(check["id"])}</code></td>'
                f'<td class="points">{format_points(check["points"])} / {format_points(check["max_points"])}</td>'
                f"<td>{e(check['message'])}</td></tr>"
            )
        body.append("</table>")
        if report["problems"]:
            body.append("<h2>Problems while running your notebook</h2>")
            body.append("<p>Grading went on without what these left undefined.</p><ul>")
            body.extend(f"<li>{e(problem)}</li>" for problem in report["problems"])
            body.append("</ul>")
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{e(title)}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def write_feedback(rows: list[BatchRow], folder: str | Path) -> list[Path]:
    """A feedback page for every row under ``folder``; returns their paths."""
    paths = []
    for row in rows:
        path = feedback_file(row, folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(feedback_html(row), encoding="utf-8")
        paths.append(path)
    return paths
