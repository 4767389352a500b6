"""`hw2 grade gpt`: a TA's autograder for students' implementations of the course template's
gpt.py. Library entry point: ``run_grade`` (run.py); each submission runs in its own process
(sandbox.py) through the checks of checks.py; render.py prints and writes the results."""
