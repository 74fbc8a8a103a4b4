"""Lesson 01, tokenization: one test per check (visible, then hidden), each worth its check's points.

    pytest autograder/graders/test_01_tokenization.py --notebook lessons/01_tokenization/01_tokenization.ipynb
"""

import pytest


@pytest.mark.points(1)
def test_char_tokenizer(grade):
    grade("tokenization.char_tokenizer")


@pytest.mark.points(1)
def test_char_tokenizer_hidden(grade):
    grade("tokenization.char_tokenizer.hidden")


@pytest.mark.points(1)
def test_get_pair_counts(grade):
    grade("tokenization.get_pair_counts")


@pytest.mark.points(1)
def test_get_pair_counts_hidden(grade):
    grade("tokenization.get_pair_counts.hidden")


@pytest.mark.points(1)
def test_merge(grade):
    grade("tokenization.merge")


@pytest.mark.points(1)
def test_merge_hidden(grade):
    grade("tokenization.merge.hidden")


@pytest.mark.points(2)
def test_train_bpe(grade):
    grade("tokenization.train_bpe")


@pytest.mark.points(2)
def test_train_bpe_hidden(grade):
    grade("tokenization.train_bpe.hidden")


@pytest.mark.points(2)
def test_encode(grade):
    grade("tokenization.encode")


@pytest.mark.points(1)
def test_encode_hidden(grade):
    grade("tokenization.encode.hidden")


@pytest.mark.points(1)
def test_decode(grade):
    grade("tokenization.decode")


@pytest.mark.points(1)
def test_decode_hidden(grade):
    grade("tokenization.decode.hidden")


@pytest.mark.points(1)
def test_split_chunks(grade):
    grade("tokenization.split_chunks")


@pytest.mark.points(1)
def test_split_chunks_hidden(grade):
    grade("tokenization.split_chunks.hidden")


@pytest.mark.points(1)
def test_train_bpe_chunked(grade):
    grade("tokenization.train_bpe_chunked")


@pytest.mark.points(1)
def test_train_bpe_chunked_hidden(grade):
    grade("tokenization.train_bpe_chunked.hidden")


@pytest.mark.points(1)
def test_encode_chunked(grade):
    grade("tokenization.encode_chunked")


@pytest.mark.points(1)
def test_encode_chunked_hidden(grade):
    grade("tokenization.encode_chunked.hidden")


@pytest.mark.points(1)
def test_encode_with_special(grade):
    grade("tokenization.encode_with_special")


@pytest.mark.points(1)
def test_encode_with_special_hidden(grade):
    grade("tokenization.encode_with_special.hidden")
