"""Grade a synthetic cohort of lesson 02 from start to finish and time each step.

    python bench/bench_cohort.py                          # 50 learners, batch --jobs 2
    python bench/bench_cohort.py --learners 32 --keep /tmp/cohort

The learners come from ``tests/cohort.py`` (the released lesson filled in with the solution, other correct
formulations, the catalogued mistakes and stubs). Each step is the command an instructor types, run as a process
of its own in a course folder (``nbgrader_config.py`` and ``solutions/02_attention`` copied there, the lesson
registered in a fresh gradebook): ``batch`` with the jail (``--unisolated`` where bubblewrap cannot jail),
``import`` into the gradebook, ``report`` and ``similarity``. Registering the lesson is timed too, but it is done
once per lesson, not per cohort.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the cohort builder lives with the tests that use it

from cohort import LESSON, build_cohort  # noqa: E402

from autograder.jail import unavailable_reason  # noqa: E402


def timed(label: str, command: list[str], course: Path) -> float:
    """Run one command in the course folder, with the environment's bin first on the PATH (nbgrader runs `alembic`
    by name), and print its wall time and its last line."""
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=course, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{label} failed:\n{result.stdout}\n{result.stderr[-3000:]}")
    print(f"{label:<22} {seconds:7.1f} s   {result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ''}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", default=None, help="build the course here and keep it (default: a temp folder)")
    args = parser.parse_args()

    course = Path(args.keep or tempfile.mkdtemp(prefix="bench_cohort_"))
    course.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions" / LESSON, course / "solutions" / LESSON, dirs_exist_ok=True)
    shutil.copytree(ROOT / "lessons" / LESSON, course / "lessons" / LESSON, dirs_exist_ok=True)
    python, nbgrader = sys.executable, str(Path(sys.executable).with_name("nbgrader"))
    isolation = ["--unisolated"] if unavailable_reason() else []
    print(f"{args.learners} learners of {LESSON}, batch --jobs {args.jobs}"
          f"{' --unisolated (no jail here)' if isolation else ' in the jail'}; course folder {course}")

    start = time.perf_counter()
    build_cohort(course / "submitted", args.learners)
    print(f"{'build the cohort':<22} {time.perf_counter() - start:7.1f} s")
    times = {}
    times["register"] = timed("register the lesson", [nbgrader, "generate_assignment", LESSON, "--force",
                                                      "--CourseDirectory.release_directory=release",
                                                      "--log-level=ERROR"], course)
    times["batch"] = timed("batch", [python, "-m", "autograder", "batch", "submitted", "--out", "grades/grades.csv",
                                     f"--jobs={args.jobs}", *isolation], course)
    times["import"] = timed("import", [python, "-m", "autograder", "import", "grades/grades.csv"], course)
    times["report"] = timed("report", [python, "-m", "autograder", "report", "grades", "--out", "report.html"], course)
    times["similarity"] = timed("similarity", [python, "-m", "autograder", "similarity", "submitted",
                                               f"--lesson={LESSON}", "--out=similarity.html"], course)
    total = sum(seconds for step, seconds in times.items() if step != "register")
    print(f"{'batch to reports':<22} {total:7.1f} s   ({total / args.learners:.1f} s per learner)")


if __name__ == "__main__":
    main()
