"""Q3.1's graph matrices (numpy/scipy, no torch): ``run_powers`` (walks.py), ``run_laplacian``
(laplacian.py), ``run_check`` (check.py); render.py prints their results."""
