"""What watching for borrowed code costs: each check's probe on the solutions, plain and watched.

``core.run_probe`` runs every probe under ``autograder.ownwork.watching`` (a profiler, and a TorchFunctionMode where
the exercise forbids a torch function). This times each check's probe of the solution notebook's object without the
watch (``core._probe``) and with it (``core.run_probe``), the median of ``--repeats`` runs after one warm-up, and
prints one row per check and the largest overhead::

    python bench/bench_ownwork.py                       # every lesson
    python bench/bench_ownwork.py --lessons 03_gpt_block --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from autograder.answer_key import ANSWER_KEY
from autograder.core import GRADING_ENV, _probe, checks_for, judge, run_probe
from autograder.loader import load_notebook

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"


def median_ms(run, repeats: int) -> float:
    run()  # warm-up: first calls import and compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lessons", nargs="+", default=list(ANSWER_KEY))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    rows, all_pass = [], True
    for lesson in args.lessons:
        os.environ[GRADING_ENV] = "1"  # the earlier lessons' objects are the reference's, as while grading
        solution = load_notebook(SOLUTIONS / lesson / f"{lesson}.ipynb").module
        del os.environ[GRADING_ENV]
        for check in checks_for(lesson):
            obj = getattr(solution, check.target)
            all_pass &= judge(check, run_probe(check, obj)).passed
            plain = median_ms(lambda: _probe(check, obj), args.repeats)
            watched = median_ms(lambda: run_probe(check, obj), args.repeats)
            rows.append((check.id, plain, watched))

    print(f"{'check':48} {'plain ms':>9} {'watched ms':>11} {'overhead':>9}")
    for check_id, plain, watched in rows:
        print(f"{check_id:48} {plain:9.1f} {watched:11.1f} {watched - plain:8.1f}ms")
    slowest = max(rows, key=lambda row: row[2])
    costliest = max(rows, key=lambda row: row[2] - row[1])
    print(f"slowest watched: {slowest[0]} {slowest[2]:.1f} ms; largest overhead: {costliest[0]} "
          f"+{costliest[2] - costliest[1]:.1f} ms ({costliest[2] / costliest[1]:.1f}×)")
    print(f"every solution passes watched: {all_pass}")


if __name__ == "__main__":
    main()
