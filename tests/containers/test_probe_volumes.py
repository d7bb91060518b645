"""The conformance probe volumes: valid NIfTI, ids that are content hashes, and an orientation
pair that holds the same anatomy in two storage orders."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from ctbench.conformance import probe_volumes as probes
from ctbench.preprocess.volume import load_volume_bytes


@pytest.mark.parametrize("side", ["left", "right"])
def test_orientation_storages_hold_the_same_anatomy(side):
    volumes = [load_volume_bytes(p.data, p.filename) for p in probes.orientation_storages(side)]
    assert [v.orientation for v in volumes] == list(probes.ORIENTATION_STORAGES)
    reference = volumes[0]
    k, j, i = np.nonzero(reference.array > -500)  # body voxels
    points = reference.index_to_lps(np.stack([i, j, k], axis=1).astype(float))
    for other in volumes[1:]:
        assert other.array.shape != reference.array.shape or not np.array_equal(other.array, reference.array)
        # Map each LPS point back into the other storage's index space: same HU there.
        ijk = np.linalg.solve(other.direction * np.asarray(other.spacing), (points - other.origin).T).T
        ijk = np.rint(ijk).astype(int)
        assert np.array_equal(other.array[ijk[:, 2], ijk[:, 1], ijk[:, 0]], reference.array[k, j, i])


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
