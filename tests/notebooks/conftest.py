"""The test-only lesson's graders (``graders/test_99_demo.py``) are not tests of this repository: the autograder's
tests run them through ``grade(..., graders=...)``, with the options they need."""

collect_ignore = ["graders"]
