"""`hw2 probe`: the homework report's theory answers (Q2.1, Q2.4) turned into measurements, one
module per probe, listed in ``registry`` (see its docstring for what a probe module defines)."""
