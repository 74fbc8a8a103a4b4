"""Shared test set-up: nothing a test writes reaches the user's home cache, plots never open a window, and data
files from ../shared/data (or wherever GPT_DATA_DIR points) are found through one fixture."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the whole session, so a data set prepared by one test is reused by the next."""
    folder = tmp_path_factory.mktemp("gpt_cache")
    previous = os.environ.get("GPT_CACHE_DIR")
    os.environ["GPT_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("GPT_CACHE_DIR", None)
    else:
        os.environ["GPT_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def shakespeare_path() -> Path:
    """tinyshakespeare.txt from $GPT_DATA_DIR (CI sets it to ../shared/data); tests that need it skip without it."""
    data_dir = os.environ.get("GPT_DATA_DIR")
    path = Path(data_dir) / "tinyshakespeare.txt" if data_dir else None
    if path is None or not path.exists():
        pytest.skip("tinyshakespeare.txt not found: set GPT_DATA_DIR to the folder that holds it")
    return path
