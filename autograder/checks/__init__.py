"""One module per lesson; each registers its checks with ``autograder.core.register`` when imported."""
