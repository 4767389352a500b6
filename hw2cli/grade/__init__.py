"""`hw2 grade gpt`: a TA's autograder for students' implementations of the course template's
gpt.py. Library entry point: ``run_grade`` (sandbox.py), which runs each submission in its own
process through the checks of checks.py; render.py prints and writes the results."""
