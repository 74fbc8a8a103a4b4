"""The notebook loader: which cells run, how IPython syntax is translated, and how a broken or hostile cell becomes
a reported problem while the rest of the notebook still loads. Also the guarded in-process probe."""

from __future__ import annotations

import os
import signal
import time

import pytest
from notebooks.build import code, demo_notebook, graded, markdown, use_demo_checks, write

from autograder.core import get_check, judge
from autograder.loader import NotebookError, load_notebook, python_source, time_limit


@pytest.fixture(scope="module", autouse=True)
def demo_checks():
    use_demo_checks()


def load(tmp_path, cells, **kwargs):
    return load_notebook(write(tmp_path / "99_demo" / "99_demo.ipynb", cells), **kwargs)


def verdict(loaded, check_id):
    check = get_check(check_id)
    return judge(check, loaded.outcome(check))


def test_answer_and_helper_cells_run_graded_check_and_demo_cells_do_not(tmp_path):
    cells = demo_notebook(extra=(code("def helper(x):\n    return x + 1"),))
    cells += [graded("skipped_graded = 1", "test_x", 1)]
    loaded = load(tmp_path, cells)
    assert loaded.problems == []  # the demo cell raises, and graded cells would need the checks: none ran
    names = vars(loaded.module)
    assert {"double", "triple", "helper", "torch"} <= set(names)
    assert "skipped_graded" not in names
    assert verdict(loaded, "demo.double").passed


def test_magics_are_translated():
    source = "%matplotlib inline\n!pip install foo\nif True:\n    %time y = 1\nx = 1"
    assert python_source(source) == "pass\npass\nif True:\n    pass\nx = 1"
    assert python_source("%%time\nx = 1") == "\nx = 1"  # the body is kept, and its line numbers
    assert python_source("%%capture out\nx = 1") == "\nx = 1"
    assert python_source("%%bash\necho hi") is None


def test_magic_cells_load(tmp_path):
    cells = [code("%matplotlib inline\na = 1"), code("%%time\nb = 2"), code("%%writefile x.py\nc = 3")]
    loaded = load(tmp_path, cells)
    assert loaded.problems == []
    assert (loaded.module.a, loaded.module.b) == (1, 2) and not hasattr(loaded.module, "c")
    assert not (tmp_path / "99_demo" / "x.py").exists()


def test_a_syntax_error_costs_its_cell_only(tmp_path):
    cells = demo_notebook(extra=(code("x = 1\ny = (\n"),))
    loaded = load(tmp_path, cells)
    assert len(loaded.problems) == 1
    assert loaded.problems[0].startswith("cell 3: SyntaxError: ") and "(line 2)" in loaded.problems[0]
    assert verdict(loaded, "demo.double").passed and verdict(loaded, "demo.triple").passed


def test_a_failing_cell_keeps_what_ran_before_and_the_later_cells(tmp_path):
    cells = [markdown("intro"), code("a = 1\nb = 1 / 0\nc = 3"), code("d = 4")]
    loaded = load(tmp_path, cells)
    assert loaded.problems == [
        "cell 2 raised ZeroDivisionError: division by zero (line 2), its later definitions are missing"
    ]
    assert loaded.module.a == 1 and not hasattr(loaded.module, "c") and loaded.module.d == 4


def test_an_infinite_loop_cell_is_stopped(tmp_path):
    cells = [code("while True:\n    try:\n        pass\n    except:\n        pass"), code("after = 1")]
    start = time.monotonic()
    loaded = load(tmp_path, cells, cell_timeout=0.3)
    assert time.monotonic() - start < 5
    assert loaded.problems == ["cell 1 did not finish in 0.3 s: skipped"]
    assert loaded.module.after == 1


def test_exit_interrupt_input_and_prints_are_problems_not_crashes(tmp_path, capsys):
    cells = [
        code("import sys\nsys.exit(1)"),
        code("raise KeyboardInterrupt"),
        code("raise NotImplementedError()"),
        code("name = input('your name? ')"),
        code("for i in range(100_000):\n    print('flood', i)\nprinted = True"),
    ]
    loaded = load(tmp_path, cells)
    assert "cell 1 called sys.exit()" in loaded.problems[0]
    assert "cell 2 was interrupted (KeyboardInterrupt)" in loaded.problems[1]
    assert loaded.problems[2] == "cell 3 raised NotImplementedError (line 1), its later definitions are missing"
    assert "cell 4 raised EOFError" in loaded.problems[3]
    assert loaded.module.printed and len(loaded.problems) == 4
    assert capsys.readouterr() == ("", "")


def test_cells_run_in_the_notebook_folder(tmp_path):
    (tmp_path / "99_demo").mkdir()
    (tmp_path / "99_demo" / "data.txt").write_text("hello")
    before = os.getcwd()
    loaded = load(tmp_path, [code("import os\ntext = open('data.txt').read()\nos.chdir('/')")])
    assert loaded.module.text == "hello" and os.getcwd() == before


@pytest.mark.parametrize(
    "content, message",
    [("{not json", "not valid JSON"), ('{"nbformat": 4}', "no list of cells"), ('{"worksheets": []}', "nbformat 3")],
)
def test_unreadable_notebooks_raise_a_clear_error(tmp_path, content, message):
    path = tmp_path / "broken.ipynb"
    path.write_text(content)
    with pytest.raises(NotebookError, match=message):
        load_notebook(path)


def test_missing_file(tmp_path):
    with pytest.raises(NotebookError, match="no such file"):
        load_notebook(tmp_path / "nowhere.ipynb")


@pytest.mark.parametrize(
    "double, expected",
    [
        ("def double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()", "not implemented yet"),
        ("def twice(x):\n    return 2 * x", "`double` is not defined"),
        ("def double(x):\n    return str(x)", "returned str; expected a torch.Tensor"),
        ("def double(x):\n    return x * float('nan')", "NaN/inf values"),
        ("def double(x):\n    return x * x", "looks like: squared"),
        ("def double(x):\n    import sys\n    sys.exit()", "called sys.exit()"),
        ("def double(x):\n    while True:\n        pass", "did not finish in 0.3 s — an infinite loop?"),
    ],
    ids=["stub", "missing", "wrong-type", "nan", "mistake", "sys-exit", "infinite-loop"],
)
def test_broken_answers_get_a_reason(tmp_path, double, expected):
    loaded = load(tmp_path, demo_notebook(double=double), check_timeout=0.3)
    result = verdict(loaded, "demo.double")
    assert not result.passed and expected in result.message
    assert verdict(loaded, "demo.triple").passed


def test_a_probe_does_not_print(tmp_path, capsys):
    loaded = load(tmp_path, demo_notebook(double="def double(x):\n    print('debugging', x)\n    return 2 * x"))
    assert verdict(loaded, "demo.double").passed
    assert capsys.readouterr() == ("", "")


def test_time_limit_gives_an_outer_timer_back():
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(True))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.4)
        with time_limit(5):
            time.sleep(0.1)
        assert 0.1 < signal.getitimer(signal.ITIMER_REAL)[0] < 0.35
        time.sleep(0.5)
        assert fired == [True]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
