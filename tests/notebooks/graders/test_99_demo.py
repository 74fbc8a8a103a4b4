"""Graders of the test-only lesson 99_demo (checks in ../demo_checks.py)."""

import pytest


@pytest.mark.points(2)
def test_double(grade):
    grade("demo.double")


@pytest.mark.points(1)
def test_double_hidden(grade):
    grade("demo.double.hidden")


@pytest.mark.points(1)
def test_triple(grade):
    grade("demo.triple")
