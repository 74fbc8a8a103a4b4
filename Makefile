# Two commands matter: `make demo` (set up, then train the reference on the adder task) and `make test`.
# Both create .venv and install the project on first use. torch is installed first, pinned, when missing: on
# this project's CPU machines torch==2.13.0 is a local CPU wheel; on a GPU machine install your CUDA build of
# torch (>= 2.4) into .venv before running make, and it is kept.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)
# JupyterLab in one of the course's two views, the config folder jupyter/<view>/ read first (jupyter/README.md):
# `learner` without nbgrader's instructor tools, `instructor` with them. The environment's bin comes first on the
# PATH, as if activated: nbgrader runs some tools by name (the formgrader's gradebook needs `alembic`).
LAB = JUPYTER_CONFIG_PATH=$(CURDIR)/jupyter/$(1)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH} \
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/jupyter lab $(LAB_FLAGS)

.PHONY: install demo test test-browser gpu-check lab lab-instructor release clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e '.[hf]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m gpt_reference train --config adder

test: $(STAMP)
	$(BIN)/python -m pytest

# The real-browser suite (tests/browser): every lesson and solution run in JupyterLab by headless Chromium, and the
# two views. Needs Debian's chromium (or CHROMIUM=<path>); installs the `browser` extra (playwright) when missing.
test-browser: $(STAMP)
	@$(BIN)/python -c "import playwright" 2>/dev/null || $(BIN)/pip install -q -e '.[hf,browser]'
	WORKBOOK_BROWSER_TESTS=1 $(BIN)/python -m pytest tests/browser --durations=0

# The one prepared GPU check (bench/gpu_check.py, ~5 min on one H100/H200): nanoGPT's shakespeare_char recipe to val
# loss 1.47, GPT-2 124M tokens/s and MFU, torchrun against one process, fp16 with a gradient scaler. Prints a JSON
# summary, also written to runs/gpu_check.json. Without CUDA it runs its tiny sizes. tinyshakespeare.txt is read from
# $GPT_DATA_DIR when set (GPT_DATA_DIR=<folder> make gpu-check), else downloaded once.
gpu-check: $(STAMP)
	@mkdir -p runs
	$(BIN)/python bench/gpu_check.py --json runs/gpu_check.json

# The learner's JupyterLab on lessons/; the instructor's on the course root (Formgrader, Create Assignment).
lab: $(STAMP)
	@mkdir -p lessons
	$(call LAB,learner) --ServerApp.root_dir=lessons

lab-instructor: $(STAMP)
	$(call LAB,instructor)

# Regenerate every learner notebook lessons/NN_topic/ from its source solutions/NN_topic/ (solutions replaced by
# stubs, hidden tests removed, outputs cleared). --no-db leaves gradebook.db alone; the result is byte-for-byte
# reproducible, and tests/test_lessons_sync.py fails when lessons/ is stale.
release: $(STAMP)
	$(BIN)/nbgrader generate_assignment '*' --no-db --force --log-level=ERROR

clean:
	rm -rf $(VENV) runs .pytest_cache
