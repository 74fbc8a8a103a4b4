"""Lesson 04, the trainer: one test per check (visible, then hidden), each worth its check's points.

    pytest autograder/graders/test_04_training.py --notebook lessons/04_training/04_training.ipynb [--sandbox]
"""

import pytest


@pytest.mark.points(1)
def test_get_batch(grade):
    grade("training.get_batch")


@pytest.mark.points(1)
def test_get_batch_hidden(grade):
    grade("training.get_batch.hidden")


@pytest.mark.points(2)
def test_cross_entropy(grade):
    grade("training.cross_entropy")


@pytest.mark.points(1)
def test_cross_entropy_hidden(grade):
    grade("training.cross_entropy.hidden")


@pytest.mark.points(3)
def test_adamw(grade):
    grade("training.adamw")


@pytest.mark.points(1)
def test_adamw_hidden(grade):
    grade("training.adamw.hidden")


@pytest.mark.points(1)
def test_configure_optimizer(grade):
    grade("training.configure_optimizer")


@pytest.mark.points(1)
def test_configure_optimizer_hidden(grade):
    grade("training.configure_optimizer.hidden")


@pytest.mark.points(2)
def test_get_lr(grade):
    grade("training.get_lr")


@pytest.mark.points(1)
def test_get_lr_hidden(grade):
    grade("training.get_lr.hidden")


@pytest.mark.points(1)
def test_clip_grad_norm(grade):
    grade("training.clip_grad_norm")


@pytest.mark.points(1)
def test_clip_grad_norm_hidden(grade):
    grade("training.clip_grad_norm.hidden")


@pytest.mark.points(2)
def test_train_step(grade):
    grade("training.train_step")


@pytest.mark.points(1)
def test_train_step_hidden(grade):
    grade("training.train_step.hidden")


@pytest.mark.points(1)
def test_estimate_loss(grade):
    grade("training.estimate_loss")


@pytest.mark.points(1)
def test_estimate_loss_hidden(grade):
    grade("training.estimate_loss.hidden")


@pytest.mark.points(1)
def test_save_checkpoint(grade):
    grade("training.save_checkpoint")


@pytest.mark.points(1)
def test_save_checkpoint_hidden(grade):
    grade("training.save_checkpoint.hidden")


@pytest.mark.points(1)
def test_load_checkpoint(grade):
    grade("training.load_checkpoint")


@pytest.mark.points(1)
def test_load_checkpoint_hidden(grade):
    grade("training.load_checkpoint.hidden")


@pytest.mark.points(2)
def test_loop(grade):
    grade("training.loop")


@pytest.mark.points(1)
def test_loop_hidden(grade):
    grade("training.loop.hidden")
