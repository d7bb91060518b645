"""`Compose`: run transforms in order; and the helper intensity transforms use to accept either a
`Volume` or a plain array."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ctbench.preprocess.volume import Volume

__all__ = ["Compose", "map_array"]


class Compose:
    """Chain callables: ``Compose([Reorient("RAS"), ClipHU(-1000, 1000)])(volume)``.

    Each step gets the previous step's output (a `Volume` while geometry still matters, then a
    numpy array once `ToAxisOrder` or a slice transform has run).
    """

    def __init__(self, transforms: Iterable[Callable]):
        self.transforms = list(transforms)
        for position, transform in enumerate(self.transforms):
            if not callable(transform):
                raise ValueError(f"Compose step {position} is not callable: {transform!r}")

    def __call__(self, data):
        for transform in self.transforms:
            data = transform(data)
        return data

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


def map_array(data, function: Callable[[np.ndarray], np.ndarray]):
    """Apply an array -> array `function` to a `Volume`'s voxels (keeping its geometry) or to an array."""
    if isinstance(data, Volume):
        return data.with_array(function(data.array))
    return function(np.asarray(data))
