"""Lesson 02, attention: one test per check (visible, then hidden), each worth its check's points.

    pytest autograder/graders/test_02_attention.py --notebook lessons/02_attention/02_attention.ipynb [--sandbox]
"""

import pytest


@pytest.mark.points(1)
def test_average_past(grade):
    grade("attention.average_past")


@pytest.mark.points(1)
def test_average_past_hidden(grade):
    grade("attention.average_past.hidden")


@pytest.mark.points(1)
def test_softmax(grade):
    grade("attention.softmax")


@pytest.mark.points(1)
def test_softmax_hidden(grade):
    grade("attention.softmax.hidden")


@pytest.mark.points(1)
def test_causal_mask(grade):
    grade("attention.causal_mask")


@pytest.mark.points(1)
def test_causal_mask_hidden(grade):
    grade("attention.causal_mask.hidden")


@pytest.mark.points(2)
def test_scaled_dot_product_attention(grade):
    grade("attention.scaled_dot_product_attention")


@pytest.mark.points(2)
def test_scaled_dot_product_attention_hidden(grade):
    grade("attention.scaled_dot_product_attention.hidden")


@pytest.mark.points(3)
def test_causal_self_attention(grade):
    grade("attention.causal_self_attention")


@pytest.mark.points(2)
def test_causal_self_attention_hidden(grade):
    grade("attention.causal_self_attention.hidden")
