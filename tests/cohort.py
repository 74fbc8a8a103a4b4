"""A synthetic cohort of lesson 02 whose every grade is known in advance: ``build_cohort(folder, n)``.

Each learner is the RELEASED lesson notebook with its answer cells filled in, exercise by exercise, with one of:

- the solution's code (``solutions/02_attention``);
- a structurally different correct alternative (a loop, a cumulative sum, ``torch.arange`` comparisons, einsum,
  nanoGPT's module, …), so that learners' code differs in its tokens and not only in its names;
- a learner-style mutant from ``tests/test_attention_checks.py``: a planted named mistake, known exactly;
- the stub kept: an exercise left unimplemented.

The exercises build on each other in the solution (its attention calls the notebook's ``softmax``, its module the
notebook's ``scaled_dot_product_attention`` and ``causal_mask``), so the solution's code for an exercise is used only
where the exercises it calls are correct: every check's verdict then follows from that exercise's choice alone.

The combinations are chosen so that any two learners differ in at least two exercises, except one planted pair of
copies: the same choices and the same code, with local variables renamed and comments rewritten. A few learners are
"built from the solution" (the solution's code in four of five exercises, its module included); every other learner
has the solution's code in at most one exercise, never its module.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import random
import textwrap
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

import test_attention_checks as attention_tests

from autograder.core import checks_for

LESSON = "02_attention"
ROOT = Path(__file__).resolve().parents[1]
RELEASED = ROOT / "lessons" / LESSON / f"{LESSON}.ipynb"
SOLUTION = ROOT / "solutions" / LESSON / f"{LESSON}.ipynb"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TARGETS = ["average_past", "softmax", "causal_mask", "scaled_dot_product_attention", "CausalSelfAttention"]
GRADE_IDS = {target: f"solution_{target}" for target in TARGETS} | {
    "CausalSelfAttention": "solution_causal_self_attention"}
# the exercises whose solution calls other exercises of the notebook
CALLS = {"scaled_dot_product_attention": ["softmax"], "CausalSelfAttention": ["scaled_dot_product_attention",
                                                                                "causal_mask"]}
PASS, UNIMPLEMENTED = "pass", "not implemented yet"  # a plan's verdicts; any other is a mistake's name

# ---- the code a learner writes: bodies for the released stubs -------------------------------------------------------

ALTERNATIVES = {
    "average_past": {
        "cumulative sum": """\
counts = torch.arange(1, x.size(1) + 1, dtype=x.dtype)  # position t averages t+1 values
return x.cumsum(dim=1) / counts.view(1, -1, 1)""",
        "softmax of a masked score matrix": """\
T = x.shape[1]
future = torch.ones(T, T).triu(diagonal=1).bool()
scores = torch.zeros(T, T).masked_fill(future, float("-inf"))
return torch.softmax(scores, dim=-1) @ x""",
    },
    "softmax": {
        "logsumexp": "return torch.exp(x - torch.logsumexp(x, dim=dim, keepdim=True))",
        "amax": """\
e = torch.exp(x - x.amax(dim=dim, keepdim=True))
return e / e.sum(dim=dim, keepdim=True)""",
    },
    "causal_mask": {
        "arange comparison": """\
positions = torch.arange(T)
return positions[:, None] >= positions[None, :]  # query row t sees keys 0..t""",
        "loop": """\
allowed = torch.zeros(T, T, dtype=torch.bool)
for t in range(T):
    allowed[t, : t + 1] = True
return allowed""",
    },
    "scaled_dot_product_attention": {
        "queries scaled first": """\
q = q / math.sqrt(q.size(-1))
scores = q @ k.transpose(-2, -1)
if mask is not None:
    scores = scores.masked_fill(mask.logical_not(), float("-inf"))
return torch.softmax(scores, dim=-1) @ v""",
        "einsum with an additive mask": """\
scores = torch.einsum("...qd,...kd->...qk", q, k) * q.size(-1) ** -0.5
if mask is not None:
    scores = scores + torch.zeros_like(scores).masked_fill(~mask, float("-inf"))
return torch.einsum("...qk,...kd->...qd", scores.softmax(dim=-1), v)""",
    },
}

# CausalSelfAttention's mistakes are the test file's step-by-step module (LearnerAttention) with one step rewritten:
# the step, and the body it gets (a mutant function of the same arguments, or a line)
MODULE_STEPS = {
    "no 1/sqrt(d) scale": ("attend", attention_tests.sdpa_unscaled),
    "scaled by d instead of sqrt(d)": ("attend", attention_tests.sdpa_scaled_by_d),
    "mask applied after softmax": ("attend", attention_tests.sdpa_mask_after_softmax),
    "-inf filled in after softmax": ("attend", attention_tests.sdpa_inf_after_softmax),
    "mask filled with 0 instead of -inf": ("attend", attention_tests.sdpa_fill_zero),
    "inverted mask (upper triangle)": ("mask", attention_tests.mask_upper),
    "strictly-lower mask (diagonal excluded)": ("mask", attention_tests.mask_strictly_lower),
    "softmax over the wrong axis": ("attend", attention_tests.sdpa_softmax_over_queries),
    "heads split without transposing": ("split", "return t.reshape(B, self.n_head, T, C // self.n_head)"),
    "heads merged without transposing back": ("merge", "return y.reshape(B, T, C)"),
    "missing output projection": ("project", "return y"),
    "Linear layers built with bias=True whatever config.bias": ("__init__", """\
self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # bias=True, PyTorch's default
self.c_proj = nn.Linear(config.n_embd, config.n_embd)
self.n_head = config.n_head
self.n_embd = config.n_embd"""),
}


def _statements(function: ast.FunctionDef, lines: list[str]) -> str:
    """A function's body as source (comments between its statements kept), without its docstring and without a
    ``super().__init__()`` (the released cell has its own)."""
    body = [s for s in function.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    body = [s for s in body if "super().__init__()" not in ast.unparse(s)]
    return textwrap.dedent("".join(lines[body[0].lineno - 1 : body[-1].end_lineno]))


def _parsed(obj: object) -> tuple[ast.AST, list[str]]:
    source = textwrap.dedent(inspect.getsource(obj))
    return ast.parse(source).body[0], source.splitlines(keepends=True)


def function_body(function: object) -> str:
    return _statements(*_parsed(function))


def module_answer(cls: type, steps: dict[str, str] | None = None) -> tuple[list[str], str]:
    """A module class as an answer: the bodies of its ``__init__`` and ``forward`` (for the released class's two
    stubs) and its other methods, with the ones named in ``steps`` given a new body (name -> body), ``__init__``'s
    too."""
    node, lines = _parsed(cls)
    methods = {m.name: m for m in node.body if isinstance(m, ast.FunctionDef)}
    helpers = []
    for name, method in methods.items():
        if name not in ("__init__", "forward"):
            signature = textwrap.dedent(lines[method.lineno - 1]).rstrip()
            body = (steps or {}).get(name) or _statements(method, lines)
            helpers.append(f"{signature}\n{textwrap.indent(body.rstrip(), '    ')}")
    stubs = [(steps or {}).get(name) or _statements(methods[name], lines) for name in ("__init__", "forward")]
    return stubs, "\n\n".join(helpers)


def _mutant_module(mistake: str) -> tuple[list[str], str]:
    step, replacement = MODULE_STEPS[mistake]
    return module_answer(attention_tests.LearnerAttention,
                         {step: replacement if isinstance(replacement, str) else function_body(replacement)})


def fill(released: str, bodies: list[str], methods: str = "") -> str:
    """The released answer cell with each stub replaced, in order, by a body at the stub's indentation, and
    ``methods`` added at the end of the cell's class."""
    lines, out, stub = released.splitlines(), [], STUB.splitlines()
    bodies = list(bodies)
    i = 0
    while i < len(lines):
        if [line.strip() for line in lines[i : i + 2]] == stub:
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            out += [indent + line if line else "" for line in bodies.pop(0).splitlines()]
            i += 2
        else:
            out.append(lines[i])
            i += 1
    assert not bodies, "more bodies than stubs"
    if methods:
        out += ["", textwrap.indent(methods, "    ")]
    return "\n".join(out)


@dataclass(frozen=True)
class Option:
    """One way to answer one exercise: its kind ("solution", "alternative", "mistake" or "stub"), its name, and the
    answer cell's source."""

    kind: str
    name: str
    source: str

    @property
    def correct(self) -> bool:
        return self.kind in ("solution", "alternative")

    @property
    def verdict(self) -> str:
        return {"mistake": self.name, "stub": UNIMPLEMENTED}.get(self.kind, PASS)


def answer_cells(path: Path) -> dict[str, str]:
    """grade_id -> source of the notebook's answer cells."""
    cells = json.loads(path.read_text())["cells"]
    return {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in cells
            if c["metadata"].get("nbgrader", {}).get("solution")}


def options() -> dict[str, list[Option]]:
    """Every way the cohort answers each exercise."""
    released, solution = answer_cells(RELEASED), answer_cells(SOLUTION)
    found = {}
    for target in TARGETS:
        cell = released[GRADE_IDS[target]]
        found[target] = [Option("solution", "solution", solution[GRADE_IDS[target]]), Option("stub", "stub", cell)]
        if target == "CausalSelfAttention":
            alternatives = {"nanoGPT's module": module_answer(attention_tests.NanoGPTAttention),
                            "step by step": module_answer(attention_tests.LearnerAttention)}
            mistakes = {name: _mutant_module(name) for name in attention_tests.MUTANTS[target]}
        else:
            alternatives = {name: ([body], "") for name, body in ALTERNATIVES[target].items()}
            mistakes = {name: ([function_body(f)], "") for name, f in attention_tests.MUTANTS[target].items()}
        found[target] += [Option("alternative", name, fill(cell, *answer)) for name, answer in alternatives.items()]
        found[target] += [Option("mistake", name, fill(cell, *answer)) for name, answer in mistakes.items()]
    return found


# ---- the planted copy: the same code, other names, other comments ---------------------------------------------------


def disguise(source: str) -> str:
    """The same code with every local variable renamed and every comment rewritten (what a copier does)."""
    tree = ast.parse(source)
    local = set()
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        parameters = {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)}
        local |= {n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        local -= parameters
    lines = source.splitlines(keepends=True)
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    edits, depth = [], 0
    for before, token, after in zip([None, *tokens], tokens, [*tokens[1:], None]):
        depth += token.string in "([{" and token.type == tokenize.OP
        depth -= token.string in ")]}" and token.type == tokenize.OP
        keyword_argument = depth > 0 and after is not None and after.string == "="
        if token.type == tokenize.NAME and token.string in local and not keyword_argument and (
                before is None or before.string != "."):
            edits.append((token.start, token.end, f"my_{token.string.lower()}_"))
        elif token.type == tokenize.COMMENT and "YOUR CODE" not in token.string:
            edits.append((token.start, token.end, "# worked this out myself"))
    for (row, start), (_, end), text in sorted(edits, reverse=True):
        lines[row - 1] = lines[row - 1][:start] + text + lines[row - 1][end:]
    return "".join(lines)


# ---- the cohort -----------------------------------------------------------------------------------------------------


@dataclass
class Learner:
    name: str
    choices: dict[str, Option]
    from_solution: bool = False
    disguised: bool = False

    def expected(self) -> dict[str, str]:
        """check id -> PASS, UNIMPLEMENTED or the mistake's name, for every check of the lesson."""
        return {c.id: self.choices[c.target].verdict for c in checks_for(LESSON)}


@dataclass
class Cohort:
    folder: Path  # nbgrader's submitted/: <student>/02_attention/02_attention.ipynb
    learners: list[Learner]
    copies: tuple[str, str]  # the planted pair
    plan: dict[str, dict[str, str]] = field(default_factory=dict)  # student -> check id -> expected verdict


def _differences(a: dict[str, Option], b: dict[str, Option]) -> int:
    return sum(a[t] != b[t] for t in TARGETS)


def _consistent(choices: dict[str, Option]) -> bool:
    """The solution's code only where the exercises it calls are correct."""
    return all(choices[t].kind != "solution" or all(choices[c].correct for c in called)
               for t, called in CALLS.items())


ORIGINAL = 4  # the index of the learner who is copied: after the four built from the solution


def plan_cohort(n: int, seed: int = 0) -> tuple[list[Learner], tuple[str, str]]:
    """``n`` learners (at least 6): the ones built from the solution, the planted pair, then random others."""
    every, rng = options(), random.Random(seed)
    solution = {t: every[t][0] for t in TARGETS}

    def pick(target: str, kind: str, index: int = 0) -> Option:
        return [o for o in every[target] if o.kind == kind][index]

    plans = []
    for target, kind in [("average_past", "mistake"), ("softmax", "alternative"), ("causal_mask", "alternative"),
                         ("scaled_dot_product_attention", "alternative")]:
        plans.append(({**solution, target: pick(target, kind)}, True))
    original = {"average_past": pick("average_past", "alternative"), "softmax": pick("softmax", "mistake"),
                "causal_mask": pick("causal_mask", "alternative", 1),
                "scaled_dot_product_attention": pick("scaled_dot_product_attention", "mistake", 2),
                "CausalSelfAttention": pick("CausalSelfAttention", "alternative")}
    assert len(plans) == ORIGINAL
    plans.append((original, False))
    # how often each kind of answer is drawn, shared among that kind's options: mistakes most, stubs seldom
    weights = {"solution": 1, "alternative": 4, "mistake": 6, "stub": 1}
    draw = {t: [weights[o.kind] / [p.kind for p in every[t]].count(o.kind) for o in every[t]] for t in TARGETS}
    while len(plans) < n - 1:
        choices = {t: rng.choices(every[t], weights=draw[t])[0] for t in TARGETS}
        solution_code = [t for t in TARGETS if choices[t].kind == "solution"]
        if (len(solution_code) > 1 or "CausalSelfAttention" in solution_code or not _consistent(choices)
                or any(_differences(choices, other) < 2 for other, _ in plans)):
            continue
        plans.append((choices, False))
    learners = [Learner(f"learner{i + 1:02d}", choices, from_solution) for i, (choices, from_solution)
                in enumerate(plans)]
    copy = Learner(f"learner{n:02d}", original, disguised=True)
    return [*learners, copy], (learners[ORIGINAL].name, copy.name)


def build_cohort(folder: Path, n: int = 32, seed: int = 0) -> Cohort:
    """Write ``n`` learners' notebooks under ``folder`` (nbgrader's submitted/ layout) and return them with the plan."""
    learners, copies = plan_cohort(n, seed)
    released = json.loads(RELEASED.read_text())
    for learner in learners:
        notebook = json.loads(json.dumps(released))
        for cell in notebook["cells"]:
            grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
            target = next((t for t, g in GRADE_IDS.items() if g == grade_id), None)
            if target:
                source = learner.choices[target].source
                cell["source"] = disguise(source) if learner.disguised else source
        path = folder / learner.name / LESSON / f"{LESSON}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    return Cohort(folder, learners, copies, {learner.name: learner.expected() for learner in learners})
