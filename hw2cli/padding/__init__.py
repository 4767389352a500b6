"""`hw2 padding-bench`: padding and translation invariance (homework Q1.1, Tables 1 and 2).

``data`` draws the red/green box images, ``model`` holds Net1/Net2, ``train`` the
sequential (course-style) and batched (stacked networks, for the GPU) trainers, ``bench`` the library entry
point :func:`hw2cli.padding.bench.run_padding_bench`, ``render`` the tables.
"""

# Here rather than in model.py so that `hw2 report` can name the rows without importing torch.
CONV_TYPES = ("valid", "replicate", "reflect", "circular", "sconv", "fconv")
