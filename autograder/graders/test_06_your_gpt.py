"""Lesson 06, your GPT end to end: one test per check (visible, then hidden), each worth its check's points.

    pytest autograder/graders/test_06_your_gpt.py --notebook lessons/06_your_gpt/06_your_gpt.ipynb [--sandbox]
"""

import pytest


@pytest.mark.points(2)
def test_tokenizer(grade):
    grade("your_gpt.tokenizer")


@pytest.mark.points(1)
def test_tokenizer_hidden(grade):
    grade("your_gpt.tokenizer.hidden")


@pytest.mark.points(2)
def test_gpt(grade):
    grade("your_gpt.gpt")


@pytest.mark.points(1)
def test_gpt_hidden(grade):
    grade("your_gpt.gpt.hidden")


@pytest.mark.points(3)
def test_train(grade):
    grade("your_gpt.train")


@pytest.mark.points(1)
def test_train_hidden(grade):
    grade("your_gpt.train.hidden")


@pytest.mark.points(2)
def test_generate_text(grade):
    grade("your_gpt.generate_text")


@pytest.mark.points(1)
def test_generate_text_hidden(grade):
    grade("your_gpt.generate_text.hidden")
