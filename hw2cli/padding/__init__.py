"""`hw2 padding-bench`: padding and translation invariance (homework Q1.1, Tables 1 and 2).

``options`` holds the options of the two commands, ``data`` draws the red/green box images,
``model`` holds Net1/Net2, ``train`` the sequential (course-style) and batched (stacked
networks, for the GPU) trainers, ``bench`` the library entry point
:func:`hw2cli.padding.bench.run_padding_bench`, ``render`` the tables.
"""

# Here rather than in model.py so that `hw2 report` and the options name them without torch.
CONV_TYPES = ("valid", "replicate", "reflect", "circular", "sconv", "fconv")
NETS = ("net1", "net2")  # the report's table order
