"""The dress rehearsal's data: N distinct CT-sized phantom volumes and their questions.

Each volume is one of a few rendered phantom torsos (`datasets/phantom`: lungs, kidneys, liver,
spleen and lesions of known side, level and size, so `geometric` has real work), int16 NIfTI,
gzip-compressed. Copies of one torso differ in a few air voxels of the first slice (still air to
every model), so every file has its own content hash and every server reads and prepares every
volume. Each volume carries the phantom's ten questions with options and, when the published
CT-SpatialVQA questions are at hand, the open questions of one published volume (cycling).
Volumes are written one at a time as the benchmark asks for them (`write_volume`), so a long
rehearsal can delete each run's files as it goes.
"""
from __future__ import annotations

import gzip
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctbench.datasets.phantom.anatomy import Anatomy, Grid
from ctbench.datasets.phantom.generate import PhantomConfig, design, lesions_for, questions_for

#: name -> (shape (i, j, k), spacing mm). "ct-rate" is a CT-RATE volume: 512 x 512 x 200 int16,
#: ~100 MiB decoded, the same 400 mm field of view as the phantom's own CT-RATE size.
REHEARSAL_SIZES = {
    "ct-rate": ((512, 512, 200), (0.75, 0.75, 2.0)),
    "small": ((96, 96, 64), (4.0, 4.0, 6.25)),
}
BASE_TORSOS = 4  # distinct anatomies rendered; every further volume is a copy with its own bytes


@dataclass(frozen=True)
class PublishedQuestions:
    """Open question texts (and their reference answers) of the published CT-SpatialVQA, by volume."""

    per_volume: list[list[dict]]
    source: str

    @classmethod
    def load(cls, path: Path) -> PublishedQuestions:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        per_volume = []
        for entry in data.values():
            pairs = [{"question": str(p["question"]), "answer": str(p.get("answer", "")),
                      "category": list(p.get("category") or [])} for p in entry.get("qa_pairs", [])]
            if pairs:
                per_volume.append(pairs)
        return cls(per_volume, str(path))


class RehearsalVolumes:
    """Writes volume `index` (0-based) on demand; the same index always gives the same bytes."""

    def __init__(self, size: str = "ct-rate", published: PublishedQuestions | None = None, noise_hu: float = 5.0):
        if size not in REHEARSAL_SIZES:
            raise ValueError(f"rehearsal size must be one of {sorted(REHEARSAL_SIZES)}, got {size!r}")
        self.size, self.published, self.noise_hu = size, published, noise_hu
        shape, spacing = REHEARSAL_SIZES[size]
        self.grid = Grid(shape, spacing)
        self.rows = design(PhantomConfig(n_volumes=BASE_TORSOS, seed=0))
        self._nifti: dict[int, tuple[bytearray, int]] = {}  # torso -> (.nii bytes, voxel offset)

    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        return self.grid.shape_ijk

    def _torso(self, base: int) -> tuple[bytearray, int]:
        if base not in self._nifti:
            import SimpleITK as sitk

            rng = np.random.default_rng(base + 1)
            array = Anatomy(self.grid, lesions_for(self.rows[base])).render(self.noise_hu, rng)
            image = sitk.GetImageFromArray(array)
            del array
            image.SetSpacing(self.grid.spacing)
            image.SetOrigin(self.grid.origin)
            writer = sitk.ImageFileWriter()
            writer.SetImageIO("NiftiImageIO")
            import tempfile

            with tempfile.TemporaryDirectory(prefix="ctbench-rehearsal-") as tmp:
                plain = Path(tmp) / "torso.nii"
                writer.SetFileName(str(plain))
                writer.Execute(image)
                data = bytearray(plain.read_bytes())
            offset = int(struct.unpack_from("<f", data, 108)[0])  # vox_offset
            self._nifti[base] = (data, offset)
        return self._nifti[base]

    def name(self, index: int) -> str:
        return f"rehearsal_{index:04d}.nii.gz"

    def write_volume(self, index: int, folder: Path) -> Path:
        """Write volume `index` into `folder` (gzip level 1, as fast as a scanner export)."""
        data, offset = self._torso(index % BASE_TORSOS)
        stamp = bytearray(data[offset: offset + 8])
        data[offset: offset + 8] = struct.pack("<4h", -1000, -1000 + (index >> 10) % 24, -1000 + (index >> 5) % 32, -1000 + index % 32)
        path = Path(folder) / self.name(index)
        try:
            with gzip.open(path, "wb", compresslevel=1) as handle:
                handle.write(data)
        finally:
            data[offset: offset + 8] = stamp
        return path

    def questions(self, index: int) -> list[dict]:
        """The phantom's ten questions with options, then the published open questions of one volume."""
        pairs = questions_for(self.rows[index % BASE_TORSOS])
        if self.published is not None and self.published.per_volume:
            opened = self.published.per_volume[index % len(self.published.per_volume)]
            pairs = pairs + [dict(p) for p in opened]
        return pairs

    def write_dataset(self, n: int, path: Path) -> Path:
        """The qa_pairs JSON file `path` for volumes 0..n-1, in volumes/ next to it (not written here)."""
        qa = {self.name(i): {"image_path": f"volumes/{self.name(i)}", "qa_pairs": self.questions(i)} for i in range(n)}
        path = Path(path)
        path.write_text(json.dumps(qa, indent=1))
        return path
