"""Time the feedback a learner waits for: every self-check, the grade of every lesson, and the status of the course.

    python bench/bench_feedback.py                  # every lesson in solutions/ and lessons/
    python bench/bench_feedback.py --lessons 01_tokenization 02_attention --no-status

* self-check: a check cell in the learner's kernel, ``check(id, obj)``, which runs the exercise's visible check and
  its hidden twin (``autograder.core.run_exercise``), on the solution notebook's object, in this process. Each is timed
  on its first call, as a learner's first run of the cell is: the reference's outputs are not cached yet. Budget 1 s.
  PyTorch's first construction of an optimizer (any, the learner's own included) imports ``torch._dynamo``, about 2 s
  once per kernel: it is paid and reported first, apart, so that it does not land on whichever check comes first;
* grade: ``python -m autograder grade`` of each solution notebook, in this process (its graders under pytest, the
  notebook loaded as the graders load it). Budget 8 s;
* status: ``python -m autograder status`` over ``lessons/`` (the released stubs) in a fresh process, start-up and
  imports included. Budget 15 s.

Times are wall-clock seconds on this machine with its current load; the table says which are over budget.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

from autograder.core import checks_for, run_exercise
from autograder.grading import grade
from autograder.loader import load_notebook

ROOT = Path(__file__).resolve().parents[1]
SELF_CHECK_BUDGET, GRADE_BUDGET, STATUS_BUDGET = 1.0, 8.0, 15.0


def over(seconds: float, budget: float) -> str:
    return "" if seconds <= budget else f"  OVER {budget:g} s"


def time_self_checks(lesson: str) -> list[tuple[str, float, str]]:
    """(check id, seconds, verdict) for every exercise of the lesson, on its solution notebook's objects."""
    module = load_notebook(ROOT / "solutions" / lesson / f"{lesson}.ipynb").module
    timed = []
    for check in checks_for(lesson):
        if check.hidden:
            continue
        start = time.perf_counter()
        result = run_exercise(check.id, getattr(module, check.target, None))
        timed.append((check.id, time.perf_counter() - start, result.line().splitlines()[0]))
    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    lessons = sorted(path.name for path in (ROOT / "solutions").iterdir() if path.is_dir())
    parser.add_argument("--lessons", nargs="*", default=lessons, help="lessons to time (default: all)")
    parser.add_argument("--no-status", action="store_true", help="skip `python -m autograder status`")
    args = parser.parse_args()
    print(f"{torch.get_num_threads()} torch threads; wall-clock seconds on this machine, as loaded as it is now")
    start = time.perf_counter()
    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    print(f"PyTorch's first optimizer (its one-time import of torch._dynamo): {time.perf_counter() - start:.2f} s")

    print(f"\n{'self-check (visible + hidden)':<48} {'s':>6}  verdict")
    slowest = ("", 0.0)
    for lesson in args.lessons:
        for check_id, seconds, line in time_self_checks(lesson):
            print(f"{check_id:<48} {seconds:>6.2f}  {line[:60]}{over(seconds, SELF_CHECK_BUDGET)}")
            slowest = max(slowest, (check_id, seconds), key=lambda pair: pair[1])
    print(f"slowest self-check: {slowest[0]}, {slowest[1]:.2f} s{over(slowest[1], SELF_CHECK_BUDGET)}")

    print(f"\n{'grade of the solution notebook':<48} {'s':>6}  score")
    for lesson in args.lessons:
        start = time.perf_counter()
        report = grade(ROOT / "solutions" / lesson / f"{lesson}.ipynb", lesson)
        seconds = time.perf_counter() - start
        print(f"{lesson:<48} {seconds:>6.2f}  {report.score:g}/{report.max_score:g}{over(seconds, GRADE_BUDGET)}")

    if not args.no_status:
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "autograder", "status", "--dir", str(ROOT / "lessons")],
                             capture_output=True, text=True, cwd=ROOT, check=True).stdout
        seconds = time.perf_counter() - start
        print(f"\nstatus over lessons/: {seconds:.2f} s, {len(out.splitlines())} lessons{over(seconds, STATUS_BUDGET)}")


if __name__ == "__main__":
    main()
