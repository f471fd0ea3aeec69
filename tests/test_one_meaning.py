"""Names with one meaning (issue 25, item 3): one parser of 'H'/'HxW' sizes and one rule of the
sizes the network takes (predict.py), and one relative difference between two outputs
(export/onnx.py), used by `export`, `bench` and the tests alike."""

import numpy as np
import pytest
import torch

from muggled_swinv2.export.onnx import relative_difference
from muggled_swinv2.predict import fits_network, parse_size_hw


@pytest.mark.parametrize("text, expected", [("256", (256, 256)), ("384x672", (384, 672)), ("64X96", (64, 96)),
                                            ("big", None), ("", None), ("x64", None), ("64x64x64", None)])
def test_parse_size_hw(text, expected):
    assert parse_size_hw(text) == expected


@pytest.mark.parametrize("size_hw, fits", [((64, 96), True), ((32, 32), True), ((0, 32), False), ((-32, 64), False),
                                           ((100, 64), False), ((64, 70), False), ((64,), False)])
def test_fits_network(size_hw, fits):
    assert fits_network(size_hw, 32) is fits


def test_relative_difference_is_one_measure_for_arrays_and_tensors():
    reference = np.array([[0.0, 2.0], [4.0, 8.0]], np.float32)
    ours = reference + np.array([[0.0, 0.5], [-1.0, 0.0]], np.float32)
    assert relative_difference(ours, reference) == 1.0 / 8.0
    assert relative_difference(torch.from_numpy(ours), torch.from_numpy(reference)) == 1.0 / 8.0
    assert relative_difference(torch.from_numpy(ours).bfloat16(), reference) == 1.0 / 8.0  # bench's bfloat16 outputs
    assert relative_difference(np.full((2, 2), 3.5), np.full((2, 2), 3.0)) == 0.5  # a constant reference: the plain difference
