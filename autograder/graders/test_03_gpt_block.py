"""Lesson 03, the GPT block and the full model: one test per check (visible, then hidden), each worth its check's
points.

    pytest autograder/graders/test_03_gpt_block.py --notebook lessons/03_gpt_block/03_gpt_block.ipynb [--sandbox]
"""

import pytest


@pytest.mark.points(2)
def test_layer_norm(grade):
    grade("gpt_block.layer_norm")


@pytest.mark.points(1)
def test_layer_norm_hidden(grade):
    grade("gpt_block.layer_norm.hidden")


@pytest.mark.points(1)
def test_gelu(grade):
    grade("gpt_block.gelu")


@pytest.mark.points(1)
def test_gelu_hidden(grade):
    grade("gpt_block.gelu.hidden")


@pytest.mark.points(1)
def test_mlp(grade):
    grade("gpt_block.mlp")


@pytest.mark.points(1)
def test_mlp_hidden(grade):
    grade("gpt_block.mlp.hidden")


@pytest.mark.points(2)
def test_block(grade):
    grade("gpt_block.block")


@pytest.mark.points(2)
def test_block_hidden(grade):
    grade("gpt_block.block.hidden")


@pytest.mark.points(3)
def test_gpt(grade):
    grade("gpt_block.gpt")


@pytest.mark.points(2)
def test_gpt_hidden(grade):
    grade("gpt_block.gpt.hidden")


@pytest.mark.points(2)
def test_init(grade):
    grade("gpt_block.init")


@pytest.mark.points(1)
def test_init_hidden(grade):
    grade("gpt_block.init.hidden")


@pytest.mark.points(1)
def test_count_params(grade):
    grade("gpt_block.count_params")


@pytest.mark.points(1)
def test_count_params_hidden(grade):
    grade("gpt_block.count_params.hidden")


@pytest.mark.points(2)
def test_load_hf_state_dict(grade):
    grade("gpt_block.load_hf_state_dict")


@pytest.mark.points(1)
def test_load_hf_state_dict_hidden(grade):
    grade("gpt_block.load_hf_state_dict.hidden")
