"""Lesson 07, scaling up: one test per check (visible, then hidden), each worth its check's points.

    pytest autograder/graders/test_07_scaling.py --notebook lessons/07_scaling/07_scaling.ipynb [--sandbox]
"""

import pytest


@pytest.mark.points(2)
def test_flops_per_token(grade):
    grade("scaling.flops_per_token")


@pytest.mark.points(1)
def test_flops_per_token_hidden(grade):
    grade("scaling.flops_per_token.hidden")


@pytest.mark.points(1)
def test_mfu(grade):
    grade("scaling.mfu")


@pytest.mark.points(1)
def test_mfu_hidden(grade):
    grade("scaling.mfu.hidden")


@pytest.mark.points(1)
def test_autocast_dtype(grade):
    grade("scaling.autocast_dtype")


@pytest.mark.points(1)
def test_autocast_dtype_hidden(grade):
    grade("scaling.autocast_dtype.hidden")


@pytest.mark.points(2)
def test_accumulate_gradients(grade):
    grade("scaling.accumulate_gradients")


@pytest.mark.points(1)
def test_accumulate_gradients_hidden(grade):
    grade("scaling.accumulate_gradients.hidden")


@pytest.mark.points(2)
def test_average_gradients(grade):
    grade("scaling.average_gradients")


@pytest.mark.points(1)
def test_average_gradients_hidden(grade):
    grade("scaling.average_gradients.hidden")
