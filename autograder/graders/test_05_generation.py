"""Lesson 05, generation: one test per check (visible, then hidden), each worth its check's points.

    pytest autograder/graders/test_05_generation.py --notebook lessons/05_generation/05_generation.ipynb [--sandbox]
"""

import pytest


@pytest.mark.points(1)
def test_top_k_logits(grade):
    grade("generation.top_k_logits")


@pytest.mark.points(1)
def test_top_k_logits_hidden(grade):
    grade("generation.top_k_logits.hidden")


@pytest.mark.points(2)
def test_top_p_logits(grade):
    grade("generation.top_p_logits")


@pytest.mark.points(1)
def test_top_p_logits_hidden(grade):
    grade("generation.top_p_logits.hidden")


@pytest.mark.points(2)
def test_sample_next(grade):
    grade("generation.sample_next")


@pytest.mark.points(1)
def test_sample_next_hidden(grade):
    grade("generation.sample_next.hidden")


@pytest.mark.points(2)
def test_generate(grade):
    grade("generation.generate")


@pytest.mark.points(1)
def test_generate_hidden(grade):
    grade("generation.generate.hidden")


@pytest.mark.points(1)
def test_kv_cache(grade):
    grade("generation.kv_cache")


@pytest.mark.points(1)
def test_kv_cache_hidden(grade):
    grade("generation.kv_cache.hidden")


@pytest.mark.points(2)
def test_forward_cached(grade):
    grade("generation.forward_cached")


@pytest.mark.points(1)
def test_forward_cached_hidden(grade):
    grade("generation.forward_cached.hidden")


@pytest.mark.points(2)
def test_generate_cached(grade):
    grade("generation.generate_cached")


@pytest.mark.points(1)
def test_generate_cached_hidden(grade):
    grade("generation.generate_cached.hidden")
