"""The grading spine: loads a learner's notebook, runs checks against gpt_reference, and reports points and a
diagnosis. (Built in the autograder issue; this package is installed now so that the layout is in place.)"""
