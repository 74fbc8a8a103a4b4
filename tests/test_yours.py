"""``yours(lesson)``: a later lesson gets the learner's objects of an earlier one where they pass their checks, the
reference's (with a one-line note) where they do not, and the reference's silently while a notebook is graded.

Most tests use a toy lesson, ``90_toy``, whose one object ``negate`` has a visible check (positive inputs) and a
hidden one (negative inputs), registered from a checks file the way drafts are (``AUTOGRADER_CHECKS``); the last
ones carry the real lessons 02 and 03 forward.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from autograder import yours
from autograder.answer_key import ANSWER_KEY, answer_key
from autograder.core import CHECKS, EXTRA_CHECKS_ENV
from autograder.loader import GRADING_ENV, load_notebook

ROOT = Path(__file__).resolve().parents[1]
TOY = "90_toy"
TOY_CHECKS = '''
import torch
from autograder.core import Check, as_tensor, register

def probe_positive(negate):
    return {"positive": as_tensor(negate(torch.tensor([1.0, 2.5, 3.0])), "negate(x)")}

def probe_negative(negate):
    return {"negative": as_tensor(negate(torch.tensor([-1.0, 0.5, -2.0])), "negate(x)")}

register(Check(id="toy.negate", lesson="90_toy", target="negate", probe=probe_positive, reference=torch.neg))
register(Check(id="toy.negate.hidden", lesson="90_toy", target="negate", probe=probe_negative, reference=torch.neg,
               hidden=True))
'''
RIGHT = "def negate(x):\n    return -x\n"
WRONG = "def negate(x):\n    return x\n"
RIGHT_ON_POSITIVES_ONLY = "def negate(x):\n    return -x.abs()\n"  # passes the visible check, fails the hidden
NOT_IMPLEMENTED = "def negate(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"


@pytest.fixture(scope="module", autouse=True)
def toy_lesson(tmp_path_factory: pytest.TempPathFactory):
    """The toy lesson in the answer key and its checks in the registry, for this module's tests only."""
    checks_file = tmp_path_factory.mktemp("toy_checks") / "toy_checks.py"
    checks_file.write_text(TOY_CHECKS)
    saved_env = os.environ.get(EXTRA_CHECKS_ENV)
    os.environ[EXTRA_CHECKS_ENV] = str(checks_file)
    ANSWER_KEY[TOY] = {"negate": "torch.neg"}
    yield
    del ANSWER_KEY[TOY]
    for check_id in ("toy.negate", "toy.negate.hidden"):
        CHECKS.pop(check_id, None)
    sys.modules.pop("autograder_extra_checks." + str(checks_file), None)
    if saved_env is None:
        os.environ.pop(EXTRA_CHECKS_ENV)
    else:
        os.environ[EXTRA_CHECKS_ENV] = saved_env


@pytest.fixture(autouse=True)
def not_grading(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests run as a learner's kernel does, whatever the environment that runs them."""
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv(GRADING_ENV, raising=False)


def write_notebook(path: Path, *sources: str) -> Path:
    """A notebook of code cells, as JSON."""
    cells = [{"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}
             for source in sources]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def toy_course(tmp_path: Path, answer: str) -> Path:
    write_notebook(tmp_path / TOY / f"{TOY}.ipynb", "import torch", answer)
    return tmp_path


def test_the_learners_object_is_used_when_it_passes_its_checks(tmp_path: Path, capsys) -> None:
    carried = yours(TOY, course=toy_course(tmp_path, RIGHT))
    assert carried.negate is not torch.neg and carried.negate.__module__ == f"notebook_{TOY}"
    assert torch.equal(carried.negate(torch.tensor([1.0, -2.0])), torch.tensor([-1.0, 2.0]))
    assert carried.whose == {"negate": "yours"}
    assert carried.status == {"negate": "passes its 2 checks"}
    assert carried.lines() == ["negate: yours — passes its 2 checks"]
    assert capsys.readouterr().out == f"{TOY}: using yours for 1 of 1 objects (they pass their checks)\n"


@pytest.mark.parametrize(
    "answer, why",
    [
        (WRONG, "yours fails toy.negate"),
        (RIGHT_ON_POSITIVES_ONLY, "yours fails toy.negate.hidden"),  # the hidden checks count
        (NOT_IMPLEMENTED, "yours is not implemented yet"),
        ("negative = None", "yours is not defined"),
        ("raise RuntimeError('a cell that fails')\ndef negate(x):\n    return -x\n", "yours is not defined"),
    ],
)
def test_the_reference_stands_in_with_a_note_when_yours_does_not_pass(tmp_path: Path, capsys, answer, why) -> None:
    carried = yours(TOY, course=toy_course(tmp_path, answer))
    assert carried.negate is torch.neg and carried.mine == {}
    assert carried.whose == {"negate": "the reference's"}
    assert carried.status == {"negate": why}
    assert capsys.readouterr().out == f"negate: the reference's — {why}\n"


def test_a_missing_or_unreadable_notebook_means_the_reference(tmp_path: Path, capsys) -> None:
    carried = yours(TOY, course=tmp_path)
    assert carried.negate is torch.neg and carried.status == {"negate": f"{TOY} not found"}
    assert capsys.readouterr().out == f"negate: the reference's — {TOY} not found\n"
    (tmp_path / TOY).mkdir()
    (tmp_path / TOY / f"{TOY}.ipynb").write_text("not JSON")
    carried = yours(TOY, course=tmp_path)
    assert carried.negate is torch.neg and carried.status == {"negate": f"{TOY} could not be read as a notebook"}


@pytest.mark.parametrize("variable, value", [("NBGRADER_EXECUTION", "autograde"), (GRADING_ENV, "1")])
def test_while_grading_the_reference_is_returned_silently(tmp_path, capsys, monkeypatch, variable, value) -> None:
    course = toy_course(tmp_path, RIGHT)
    monkeypatch.setenv(variable, value)
    carried = yours(TOY, course=course)
    assert carried.negate is torch.neg and carried.whose == {"negate": "the reference's"}
    assert capsys.readouterr().out == ""


def test_the_graders_loader_grades_a_notebook_on_its_own(tmp_path: Path) -> None:
    """A later notebook loaded by the graders gets the reference's objects, and the flag is gone afterwards."""
    toy_course(tmp_path, RIGHT)
    later = write_notebook(tmp_path / "91_later" / "91_later.ipynb",
                           f"from autograder import yours\nnegate = yours({TOY!r}).negate")  # fmt: skip
    assert load_notebook(later).module.negate is torch.neg
    assert GRADING_ENV not in os.environ
    assert load_notebook(later, grading=False).module.negate is not torch.neg


def test_the_earlier_notebook_is_found_beside_the_working_directory(tmp_path, monkeypatch) -> None:
    toy_course(tmp_path, RIGHT)
    (tmp_path / "91_later").mkdir()
    monkeypatch.chdir(tmp_path / "91_later")
    assert yours(TOY).whose == {"negate": "yours"}


def test_a_second_call_is_cached_and_an_edited_notebook_is_reloaded(tmp_path: Path) -> None:
    course = toy_course(tmp_path, RIGHT)
    first = yours(TOY, course=course)
    assert yours(TOY, course=course) is first
    notebook = write_notebook(course / TOY / f"{TOY}.ipynb", "import torch", WRONG)
    stat = notebook.stat()
    os.utime(notebook, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a later save, however coarse the clock
    assert yours(TOY, course=course).negate is torch.neg


def test_unknown_lessons_and_names_are_reported(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="no lesson '99_nothing'"):
        yours("99_nothing", course=tmp_path)
    with pytest.raises(AttributeError, match="grades no object named 'negation'; it grades negate"):
        yours(TOY, course=tmp_path).negation


# ---- the real lessons ------------------------------------------------------------------------------------------------


def test_lesson_03s_gpt_is_built_on_the_learners_lesson_02_attention(tmp_path: Path, capsys) -> None:
    for lesson in ("02_attention", "03_gpt_block"):
        shutil.copytree(ROOT / "solutions" / lesson, tmp_path / lesson)
    from gpt_reference.config import GPTConfig

    gpt_block = yours("03_gpt_block", course=tmp_path)
    assert set(gpt_block.whose.values()) == {"yours"}
    assert capsys.readouterr().out == "03_gpt_block: using yours for 7 of 7 objects (they pass their checks)\n"
    model = gpt_block.GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8))
    assert type(model).__module__ == "notebook_03_gpt_block"
    assert type(model.transformer.h[0].attn).__module__ == "notebook_02_attention"


def test_a_failing_lesson_02_attention_is_replaced_inside_lesson_03(tmp_path: Path, capsys) -> None:
    from gpt_reference.model import CausalSelfAttention

    for lesson in ("02_attention", "03_gpt_block"):
        shutil.copytree(ROOT / "solutions" / lesson, tmp_path / lesson)
    notebook = tmp_path / "02_attention" / "02_attention.ipynb"
    content = json.loads(notebook.read_text())
    attention_cell = next(c for c in content["cells"] if "class CausalSelfAttention" in "".join(c["source"]))
    source = "".join(attention_cell["source"])
    assert "causal_mask(T).to(x.device)" in source, "the mutant (the mask forgotten) no longer applies"
    attention_cell["source"] = source.replace("causal_mask(T).to(x.device)", "None")
    notebook.write_text(json.dumps(content))

    attention = yours("02_attention", course=tmp_path)
    assert attention.CausalSelfAttention is CausalSelfAttention
    assert "CausalSelfAttention: the reference's — yours fails attention." in capsys.readouterr().out
    assert attention.whose["softmax"] == "yours"
    gpt_block = yours("03_gpt_block", course=tmp_path)
    assert gpt_block.whose["Block"] == "yours"
    assert gpt_block.Block.__init__.__globals__["CausalSelfAttention"] is CausalSelfAttention


def test_lesson_04s_saved_model_loads_into_the_learners_gpt_and_the_references(tmp_path: Path) -> None:
    """Lesson 04 saves a state dict with its config; lesson 05 loads it into yours("03_gpt_block").GPT, which is the
    learner's class or the reference's, whichever trained it."""
    import dataclasses

    from gpt_reference.config import GPTConfig
    from gpt_reference.model import GPT as ReferenceGPT

    for lesson in ("02_attention", "03_gpt_block"):
        shutil.copytree(ROOT / "solutions" / lesson, tmp_path / lesson)
    LearnersGPT = yours("03_gpt_block", course=tmp_path).GPT
    config = GPTConfig(block_size=16, vocab_size=13, n_layer=2, n_head=2, n_embd=8, dropout=0.0, bias=False)
    ids = torch.randint(13, (2, 16))
    for saver, loader in [(LearnersGPT, ReferenceGPT), (ReferenceGPT, LearnersGPT)]:
        trained = saver(config).eval()
        path = tmp_path / "shakespeare_char.pt"
        torch.save({"model": trained.state_dict(), "config": dataclasses.asdict(config), "chars": list("ab")}, path)
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = loader(GPTConfig(**saved["config"])).eval()
        model.load_state_dict(saved["model"])  # strict: the same names, nothing missing, nothing extra
        with torch.no_grad():
            assert torch.allclose(model(ids)[0], trained(ids)[0], atol=1e-5)


@pytest.mark.parametrize("lesson", [lesson for lesson in ANSWER_KEY if (ROOT / "lessons" / lesson).is_dir()])
def test_a_blank_lesson_gives_the_reference_for_every_object(tmp_path: Path, lesson: str, capsys) -> None:
    """The released lesson, as a learner first opens it: every graded object is a stub, replaced with a note."""
    shutil.copytree(ROOT / "lessons" / lesson, tmp_path / lesson)
    carried = yours(lesson, course=tmp_path)
    assert carried.whose == dict.fromkeys(ANSWER_KEY[lesson], "the reference's")
    assert carried.status == dict.fromkeys(ANSWER_KEY[lesson], "yours is not implemented yet")
    assert capsys.readouterr().out.splitlines() == carried.lines()
    assert {name: getattr(carried, name) for name in carried.whose} == answer_key(lesson)
