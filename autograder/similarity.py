"""Submissions whose graded code is suspiciously alike: pairs of learners, and learners alike to ``solutions/``.

    python -m autograder similarity submitted/ --lesson 02_attention --out similarity.html   # + similarity.json

A submission's graded code is its answer cells (nbgrader grade ids ``solution_*``), in the order of their grade ids,
so a learner who moves cells around changes nothing. ``copydetect`` compares them the way MOSS does: the code is
tokenised, every name becomes ``V`` (so renaming variables changes nothing), comments and spaces go, and every
k-gram of what is left is hashed. The released lesson's answer cells (signatures, docstrings, the stubs) are
boilerplate: their k-grams are no evidence and are dropped first.

A pair's similarity is, for each side, the share of its code found in the other; pairs are ranked by the smaller
share (both are alike, not a short answer inside a long one) and then by the code they share. Every k-gram is kept
(window 1), so the scores do not depend on Python's string hashing seed, which changes with each process.

It flags; it never changes a score (it reads notebooks and writes its own report, nothing else).
"""

from __future__ import annotations

import html
import io
import json
import os
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.defaults import NOISE_THRESHOLD
from copydetect.utils import highlight_overlap

from .grading import find_submissions

WHOLE_FILE = 1  # copydetect's winnowing window: 1 keeps every k-gram (deterministic, and the files are small)
LISTED, SHOWN = 100, 20  # pairs in the HTML's ranking, and of those, shown with their code side by side (JSON: all)


def graded_code(notebook: str | os.PathLike) -> str:
    """The notebook's answer cells, in the order of their grade ids, one after another."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    answers = {}
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and meta.get("solution") and str(meta.get("grade_id", "")).startswith(
                "solution_"):
            answers[meta["grade_id"]] = "".join(cell["source"])
    return "\n\n".join(answers[grade_id].rstrip() for grade_id in sorted(answers)) + "\n"


def _fingerprint(name: str, code: str, boilerplate: np.ndarray | None = None) -> CodeFingerprint:
    """copydetect's fingerprint of the code, less every k-gram of the boilerplate."""
    return CodeFingerprint(f"{name}.py", NOISE_THRESHOLD, WHOLE_FILE, boilerplate, language="python",
                           fp=io.StringIO(code))


@dataclass
class Match:
    """Two submissions' code compared: each side's share found in the other, and the matching regions (HTML)."""

    first: str
    second: str
    first_share: float
    second_share: float
    tokens: int
    first_html: str
    second_html: str

    @property
    def rank(self) -> tuple[float, int]:
        return min(self.first_share, self.second_share), self.tokens

    def to_json(self) -> dict:
        return {"first": self.first, "second": self.second, "first_share": round(self.first_share, 4),
                "second_share": round(self.second_share, 4), "tokens": self.tokens}


def _compare(first: tuple[str, CodeFingerprint], second: tuple[str, CodeFingerprint]) -> Match:
    (a, fa), (b, fb) = first, second
    tokens, (share_a, share_b), (slices_a, slices_b) = compare_files(fa, fb)
    regions = []
    for fingerprint, slices, side in ((fa, slices_a, "a"), (fb, slices_b, "b")):
        if tokens:
            marked, _ = highlight_overlap(fingerprint.raw_code, slices, f"<mark class='{side}'>", "</mark>",
                                          escape_html=True)
        else:
            marked = html.escape(fingerprint.raw_code)
        regions.append(marked)
    return Match(a, b, float(share_a), float(share_b), int(tokens), *regions)


def compare(submissions: dict[str, str], solutions: dict[str, str], boilerplate: str) -> dict[str, list[Match]]:
    """``pairs``: every two submissions compared; ``solutions``: every submission against every solution. Each list
    is ranked, most alike first. The arguments map a name to its graded code."""
    boilerplate_hashes = np.array(sorted(_fingerprint("boilerplate", boilerplate).hashes))
    learners = [(name, _fingerprint(name, code, boilerplate_hashes)) for name, code in submissions.items()]
    references = [(name, _fingerprint(name, code, boilerplate_hashes)) for name, code in solutions.items()]
    pairs = [_compare(a, b) for a, b in combinations(learners, 2)]
    against = [_compare(learner, reference) for learner in learners for reference in references]
    return {"pairs": sorted(pairs, key=lambda m: m.rank, reverse=True),
            "solutions": sorted(against, key=lambda m: m.rank, reverse=True)}


def lesson_submissions(folder: str | os.PathLike, lesson: str) -> dict[str, Path]:
    """student -> notebook, for the lesson's submissions in nbgrader's ``<student>/<lesson>/`` layout."""
    return {student: path for student, assignment, path in find_submissions(folder) if assignment == lesson}


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f0f0f0}
.side{display:flex;gap:1em}.side pre{flex:1;overflow-x:auto;background:#fafafa;border:1px solid #ddd;padding:.5em;
font-size:12px}mark.a{background:#f8c8c8}mark.b{background:#c8e8c8}"""


def _ranking(title: str, matches: list[Match]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{i + 1}</td><td>{e(m.first)}</td><td>{100 * m.first_share:.0f}%</td><td>{e(m.second)}</td>"
        f"<td>{100 * m.second_share:.0f}%</td><td>{m.tokens}</td></tr>" for i, m in enumerate(matches[:LISTED]))
    table = (f"<h2>{e(title)}</h2><table><tr><th>#</th><th>submission</th><th>its share found in the other</th>"
             f"<th>compared with</th><th>its share found in the first</th><th>shared characters</th></tr>"
             f"{rows}</table>")
    sides = "".join(
        f"<h3>#{i + 1}: {e(m.first)} and {e(m.second)}</h3><div class='side'><pre>{m.first_html}</pre>"
        f"<pre>{m.second_html}</pre></div>" for i, m in enumerate(matches[:SHOWN]) if m.tokens)
    return table + sides


def render_html(lesson: str, result: dict[str, list[Match]]) -> str:
    e = html.escape
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Similarity: {e(lesson)}</title>"
            f"<style>{STYLE}</style></head><body><h1>Similarity of graded code: {e(lesson)}</h1>"
            "<p>Names are ignored, comments and the released lesson's code (signatures, docstrings, stubs) too. A "
            "high score flags a pair to read; it is not a verdict, and no score is changed.</p>"
            + _ranking("Pairs of submissions", result["pairs"])
            + _ranking("Submissions alike to the solutions", result["solutions"]) + "</body></html>")


def write_similarity(
    folder: str | os.PathLike, lesson: str, out_html: str | os.PathLike,
    solutions: str | os.PathLike = "solutions", release: str | os.PathLike = "lessons",
) -> dict[str, list[Match]]:
    """Compare the lesson's submissions under ``folder`` with each other and with ``solutions/<lesson>/``, the
    released notebook under ``release/<lesson>/`` being boilerplate; write the HTML and a JSON (``.json``)."""
    submissions = {student: graded_code(path) for student, path in lesson_submissions(folder, lesson).items()}
    references = {f"solutions/{path.relative_to(solutions)}": graded_code(path)
                  for path in sorted(Path(solutions, lesson).glob("*.ipynb"))}
    released = sorted(Path(release, lesson).glob("*.ipynb"))
    if not released:
        raise FileNotFoundError(f"no released notebook in {Path(release, lesson)}: pass --release")
    result = compare(submissions, references, "".join(graded_code(path) for path in released))
    out_html = Path(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(render_html(lesson, result), encoding="utf-8")
    data = {"lesson": lesson, "k": NOISE_THRESHOLD, "submissions": len(submissions),
            **{kind: [m.to_json() for m in matches] for kind, matches in result.items()}}
    out_html.with_suffix(".json").write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    return result
