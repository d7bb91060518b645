"""The conformance probe volumes: valid NIfTI, ids that are content hashes, and an orientation
pair that holds the same anatomy in two storage orders."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from ctbench.preprocess.volume import load_volume_bytes
from ctbench.runners.conformance import probe_volumes as probes


@pytest.mark.parametrize("side", ["left", "right"])
def test_orientation_pair_is_the_same_anatomy_in_lps_and_rps(side):
    lps, rps = (load_volume_bytes(p.data, p.filename) for p in probes.orientation_pair(side))
    assert (lps.orientation, rps.orientation) == ("LPS", "RPS")
    assert not np.array_equal(lps.array, rps.array), "stored differently"
    # Every voxel of one sits at the same LPS position in the other.
    k, j, i = np.indices(lps.array.shape).reshape(3, -1)
    points = lps.index_to_lps(np.stack([i, j, k], axis=1).astype(float))
    n_i = rps.array.shape[2]
    assert np.allclose(points, rps.index_to_lps(np.stack([n_i - 1 - i, j, k], axis=1).astype(float)))


@pytest.mark.parametrize("side, expected_sign", [("left", 1), ("right", -1)])
def test_nodule_sits_in_the_named_lung(side, expected_sign):
    shape = (32, 48, 64)
    with_nodule = probes.phantom_array(shape, nodule_side=side, seed=0)
    without = probes.phantom_array(shape, nodule_side=None, seed=0)
    k, j, i = np.nonzero(with_nodule != without)
    assert len(i) > 0
    # Identity direction: +i points to the patient's left (LPS).
    assert np.sign(i.mean() - (shape[2] - 1) / 2) == expected_sign
    assert np.all(np.abs(without[k, j, i] - probes.LUNG_HU) <= 5)


def test_volume_ids_are_sha256_of_the_file_bytes():
    probe = probes.small_volume()
    assert probe.volume_id == "sha256:" + hashlib.sha256(probe.data).hexdigest()
    assert load_volume_bytes(probe.data, probe.filename).array.shape == (32, 48, 64)


def test_large_probe_exceeds_the_grpc_message_limit():
    assert probes.large_volume().size > 4 << 20
