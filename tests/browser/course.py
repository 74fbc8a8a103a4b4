"""The course the browser suite serves: a copy of what a learner or an instructor has, and its lessons in order."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted(path.name for path in (ROOT / "solutions").iterdir() if path.is_dir())
PARTS = ["nbgrader_config.py", "solutions", "lessons"]  # the nbgrader config, the sources and the release


def copy_course(destination: Path) -> Path:
    """A copy of the course in `destination`: JupyterLab writes outputs into the notebooks it runs, and nbgrader its
    gradebook into the course."""
    for name in PARTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        else:
            shutil.copy2(source, destination / name)
    return destination
