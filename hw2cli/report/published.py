"""The numbers the homework report published, to set beside reproduced ones."""

from __future__ import annotations

from hw2cli.padding import CONV_TYPES

# The protocol behind the published Tables 1 and 2: 10 rounds of at most 50 epochs each.
PUBLISHED_ROUNDS = 10
PUBLISHED_EPOCHS = 50

CONV_ORDER = CONV_TYPES  # the tables' rows, in the order padding-bench trains them

# Table 1 (Net1) and Table 2 (Net2): accuracy in %, mean and std over 10 rounds,
# as (validation mean, validation std, test mean, test std).
TABLES: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "net1": {
        "valid": (100.00, 0.00, 0.09, 0.11),
        "replicate": (98.31, 0.48, 93.80, 2.16),
        "reflect": (100.00, 0.00, 0.00, 0.00),
        "circular": (99.64, 0.29, 82.61, 2.75),
        "sconv": (98.89, 0.21, 6.37, 0.23),
        "fconv": (88.07, 1.20, 88.85, 0.62),
    },
    "net2": {conv: (100.00, 0.00, 0.00, 0.00) for conv in CONV_ORDER},
}

# Q3.1b: the report's A^2 of its first graph, as printed.
GRAPH1_SQUARE = [
    [3.0, 1.0, 1.0, 1.0, 0.0],
    [1.0, 2.0, 1.0, 1.0, 1.0],
    [1.0, 1.0, 3.0, 0.0, 1.0],
    [1.0, 1.0, 0.0, 1.0, 0.0],
    [0.0, 1.0, 1.0, 0.0, 1.0],
]
