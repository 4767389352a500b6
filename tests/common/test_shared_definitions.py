"""Definitions that used to be copied between modules now have one home."""

from __future__ import annotations

import numpy as np

from hw2cli.graph.io import json_number, matrix_to_json


def test_json_number_keeps_ints_only_below_2_53():
    assert json_number(3.0) == 3 and isinstance(json_number(3.0), int)
    assert json_number(np.float64(-7)) == -7 and isinstance(json_number(np.float64(-7)), int)
    assert isinstance(json_number(2.5), float)
    assert isinstance(json_number(float(2**53)), float)  # not exact as an int any more
    assert isinstance(json_number(float(2**53 - 1)), int)
    assert matrix_to_json(np.array([[1.0, 2.0**60]])) == [[1, float(2**60)]]


def test_report_rows_follow_padding_conv_types():
    from hw2cli.padding.model import CONV_TYPES
    from hw2cli.report.published import CONV_ORDER, TABLES

    assert CONV_ORDER == CONV_TYPES
    assert tuple(TABLES["net1"]) == CONV_TYPES


def test_layer_sizes_end_at_the_feature_size_and_drive_the_flop_count():
    from hw2cli.padding.model import LAYERS, PaddingNetConfig, feature_size, forward_flops, layer_sizes

    assert layer_sizes("valid")[-1] == feature_size("valid") == 2
    sizes = layer_sizes("replicate")
    conv = sum(2 * c_in * 9 * c_out * s * s for (c_in, c_out, _), s in zip(LAYERS, sizes, strict=True))
    assert forward_flops(PaddingNetConfig(net="net1", conv_type="replicate")) == conv + 2 * LAYERS[-1][1] * 2
