"""The test-only graders use the real graders' options and fixtures."""

from autograder.graders.conftest import grade, learner, pytest_addoption, pytest_configure  # noqa: F401
