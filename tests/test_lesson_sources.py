"""Every lesson names where it comes from: a "Sources" section with the papers it teaches from (at least one on arXiv)
and the file of Karpathy's minGPT, nanoGPT or minbpe it follows; every link in a lesson is well-formed.

Nothing is fetched (the tests run offline): an arXiv link must be an abstract page with a well-formed identifier, and a
GitHub link to Karpathy's code must name a file or folder of one of his repositories on its main branch.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(path.name for path in (ROOT / "solutions").iterdir() if path.is_dir())
LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")  # markdown [text](url)
ARXIV = re.compile(r"https://arxiv\.org/abs/\d{4}\.\d{4,5}")
KARPATHY = re.compile(r"https://github\.com/karpathy/(nanoGPT|minGPT|minbpe|ng-video-lecture)/(blob|tree)/master/[\w./-]+")


def _markdown(folder: str, lesson: str) -> list[str]:
    nb = nbformat.read(ROOT / folder / lesson / f"{lesson}.ipynb", as_version=4)
    return [cell.source for cell in nb.cells if cell.cell_type == "markdown"]


def _sources(folder: str, lesson: str) -> str:
    sections = [text for text in _markdown(folder, lesson) if text.startswith("## Sources\n")]
    assert len(sections) == 1, f"{folder}/{lesson}: one markdown cell that starts with '## Sources'"
    return sections[0]


@pytest.mark.parametrize("folder", ["solutions", "lessons"])  # the learner reads the released copy
@pytest.mark.parametrize("lesson", LESSONS)
def test_a_lesson_cites_a_paper_on_arxiv_and_the_karpathy_file_it_follows(lesson: str, folder: str) -> None:
    links = LINK.findall(_sources(folder, lesson))
    assert any(ARXIV.fullmatch(url) for url in links), f"{lesson}: no arXiv paper in its Sources"
    assert any(KARPATHY.fullmatch(url) for url in links), f"{lesson}: no minGPT/nanoGPT/minbpe file in its Sources"


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_link_of_a_lesson_is_well_formed(lesson: str) -> None:
    for url in LINK.findall("\n".join(_markdown("solutions", lesson))):
        parts = urlparse(url)
        assert parts.scheme == "https" and "." in parts.netloc, url
        if parts.netloc == "arxiv.org":
            assert ARXIV.fullmatch(url), url
        if url.startswith("https://github.com/karpathy/"):
            assert KARPATHY.fullmatch(url), url


@pytest.mark.parametrize("url", ["https://arxiv.org/abs/1706.037", "http://arxiv.org/abs/1706.03762",
                                 "https://arxiv.org/pdf/1706.03762"])
def test_a_malformed_arxiv_link_is_caught(url: str) -> None:
    assert not ARXIV.fullmatch(url)


@pytest.mark.parametrize("url", ["https://github.com/karpathy/nanoGPT", "https://github.com/karpathy/nanogpt/blob/master/model.py",
                                 "https://github.com/karpathy/nanoGPT/blob/main/model.py"])
def test_a_malformed_karpathy_link_is_caught(url: str) -> None:
    assert not KARPATHY.fullmatch(url)
