"""The input presets the VLM servers use, behind one lookup.

`preset(name, variant)` returns the preprocessing engineer's `ctbench.preprocess` InputSpec when
that registry has it, and otherwise the local stand-in below with the same interface
(`to_dict()`, `apply(volume)`, `num_slices`, `windows`, `slice_size`). Servers call only
`preset`, `input_spec_for` and the slice helpers, so switching to the shared presets needs no
server change.

Array conventions: `Volume.array` is [k, j, i] (SimpleITK's (z, y, x)); nibabel's
`get_fdata()` transposed (x,y,z)->(z,y,x), which the published harness used for the slice
models, gives the same array, so "as stored" here means `Volume.array` untouched.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ctbench.preprocess.volume import Volume

# --- pure functions ---------------------------------------------------------------------------


def window_to_uint8(array: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """Clip HU to [lower, upper] and map linearly to 0..255 uint8."""
    if not upper > lower:
        raise ValueError(f"window upper must exceed lower, got ({lower}, {upper})")
    scaled = (np.clip(array.astype(np.float32), lower, upper) - lower) / (upper - lower)
    return np.round(scaled * 255.0).astype(np.uint8)


def sample_indices(length: int, count: int) -> np.ndarray:
    """`count` indices spread evenly over 0..length-1 (linspace, rounded), or all if fewer."""
    if length < 1 or count < 1:
        raise ValueError(f"need length >= 1 and count >= 1, got length={length}, count={count}")
    if length <= count:
        return np.arange(length)
    return np.rint(np.linspace(0, length - 1, count)).astype(int)


def render_slices(
    array_dhw: np.ndarray,
    num_slices: int,
    windows: tuple[tuple[float, float], ...],
    size: tuple[int, int] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(N, rows, cols, 3) uint8 RGB slices (one window per channel) and the slice indices.

    Slices are taken along axis 0 of a (D, H, W) array; `size` resizes each one bilinearly,
    None keeps the native size."""
    if len(windows) != 3:
        raise ValueError(f"need three windows (R, G, B), got {len(windows)}")
    indices = sample_indices(array_dhw.shape[0], num_slices)
    stack = array_dhw[indices]
    rgb = np.stack([window_to_uint8(stack, lo, hi) for lo, hi in windows], axis=-1)
    if size is not None and tuple(rgb.shape[1:3]) != tuple(size):
        from PIL import Image

        rgb = np.stack([
            np.asarray(Image.fromarray(s).resize((size[1], size[0]), Image.BILINEAR)) for s in rgb
        ])
    return rgb, indices


def min_max(array: np.ndarray) -> np.ndarray:
    """Whole-array min-max to [0, 1] float32 (a constant array maps to zeros)."""
    array = array.astype(np.float32)
    lo, hi = float(array.min()), float(array.max())
    return np.zeros_like(array) if hi <= lo else (array - lo) / (hi - lo)


def clip_scale(array: np.ndarray, lower: float, upper: float, b_min: float = 0.0, b_max: float = 1.0) -> np.ndarray:
    """Clip to [lower, upper] and map linearly to [b_min, b_max] float32."""
    scaled = (np.clip(array.astype(np.float32), lower, upper) - lower) / (upper - lower)
    return (scaled * (b_max - b_min) + b_min).astype(np.float32)


def resize_linear(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Trilinear resize of a 3D array to `shape` (whole extent, corners aligned)."""
    from scipy import ndimage

    factors = [t / s for t, s in zip(shape, array.shape)]
    out = ndimage.zoom(array.astype(np.float32), factors, order=1, mode="nearest", grid_mode=False)
    return out[tuple(slice(0, t) for t in shape)]


def center_crop_or_pad(array: np.ndarray, shape: tuple[int, ...], pad_value: float) -> np.ndarray:
    out = np.full(shape, pad_value, dtype=array.dtype)
    src, dst = [], []
    for have, want in zip(array.shape, shape):
        if have >= want:
            start = (have - want) // 2
            src.append(slice(start, start + want))
            dst.append(slice(0, want))
        else:
            start = (want - have) // 2
            src.append(slice(0, have))
            dst.append(slice(start, start + have))
    out[tuple(dst)] = array[tuple(src)]
    return out


def resample_spacing(volume: Volume, spacing_ijk: tuple[float, float, float]) -> np.ndarray:
    """Array [k, j, i] resampled (linearly) to `spacing_ijk` mm over the same extent."""
    factors = [s / t for s, t in zip(reversed(volume.spacing), reversed(spacing_ijk))]
    shape = tuple(max(1, int(round(n * f))) for n, f in zip(volume.array.shape, factors))
    return resize_linear(volume.array, shape)


def to_ras_xyz(volume: Volume) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The array reoriented to RAS and indexed (x, y, z) (MONAI `Orientationd("RAS")` after
    `LoadImaged`), and the spacing along those axes."""
    array = volume.array.transpose(2, 1, 0)  # (i, j, k)
    direction = volume.direction
    spacing = list(volume.spacing)
    # For each LPS axis find the index axis along it; RAS flips L->R and P->A.
    perm, flips = [], []
    for axis in range(3):
        col = int(np.argmax(np.abs(direction[axis, :])))
        perm.append(col)
        sign = direction[axis, col]
        flips.append(sign > 0 if axis < 2 else sign < 0)  # LPS +x = left: RAS wants right first
    array = array.transpose(perm)
    for axis, flip in enumerate(flips):
        if flip:
            array = np.flip(array, axis=axis)
    return np.ascontiguousarray(array), tuple(spacing[p] for p in perm)


# --- the local stand-in presets -----------------------------------------------------------------


@dataclass(frozen=True)
class LocalSpec:
    """Same fields as `ctbench.preprocess.input_spec.InputSpec` (see its docstring)."""

    name: str
    variant: str
    kind: str
    orientation: str = ""
    axis_order: str = "DHW"
    target_shape: tuple[int, ...] = ()
    target_spacing_mm: tuple[float, ...] = ()
    intensity: str = ""
    num_slices: int = 0
    windows: tuple[tuple[float, float], ...] = ()
    notes: str = ""
    details: Mapping[str, str] = field(default_factory=dict)
    build: Callable[[Volume], Any] | None = None

    @property
    def slice_size(self) -> tuple[int, int] | None:
        size = self.details.get("slice_size", "native")
        if size == "native":
            return None
        rows, cols = size.split("x")
        return (int(rows), int(cols))

    def apply(self, volume: Volume) -> Any:
        if self.build is None:
            raise ValueError(f"{self.name}/{self.variant}: no pipeline")
        return self.build(volume)

    def to_dict(self) -> dict:
        return {
            "name": self.name, "variant": self.variant, "kind": self.kind, "orientation": self.orientation,
            "axis_order": self.axis_order, "target_shape": list(self.target_shape),
            "target_spacing_mm": list(self.target_spacing_mm), "intensity": self.intensity,
            "num_slices": int(self.num_slices), "windows": [list(w) for w in self.windows], "notes": self.notes,
            "details": dict(self.details),
        }


GEMMA_WINDOWS = ((-1024.0, 1024.0), (-135.0, 215.0), (0.0, 80.0))
GEMMA_PUBLISHED_WINDOWS = ((-1225.0, 1025.0), (-135.0, 215.0), (0.0, 80.0))


def _slices(spec_windows, num, size):
    def build(volume: Volume):
        return render_slices(volume.array, num, spec_windows, size)[0]
    return build


def _med3dvlm_published(volume: Volume) -> np.ndarray:
    return resize_linear(min_max(volume.array), (128, 256, 256))


def _med3dvlm_authors(volume: Volume) -> np.ndarray:
    return resize_linear(clip_scale(volume.array, -1350.0, 150.0), (128, 256, 256))


def _m3d_published(volume: Volume) -> np.ndarray:
    return resize_linear(min_max(volume.array), (32, 256, 256))


def _m3d_authors(volume: Volume) -> np.ndarray:
    return resize_linear(clip_scale(volume.array, -1350.0, 150.0), (32, 256, 256))


def _radfm(volume: Volume) -> np.ndarray:
    """(3, H, W, D): clip [-1024, 1024] -> [0, 1], resized to 512 x 512 x 128, 3 equal channels."""
    scaled = clip_scale(volume.array, -1024.0, 1024.0)
    yxz = resize_linear(scaled, (128, 512, 512)).transpose(1, 2, 0)
    return np.repeat(yxz[None], 3, axis=0)


def _ctchat(volume: Volume) -> np.ndarray:
    """(240, 480, 480) D,H,W: clip +-1000 HU, /1000, 0.75 x 0.75 x 1.5 mm, crop/pad with -1."""
    clipped = volume.with_array(np.clip(volume.array.astype(np.float32), -1000.0, 1000.0))
    resampled = resample_spacing(clipped, (0.75, 0.75, 1.5)) / 1000.0
    return center_crop_or_pad(resampled, (240, 480, 480), -1.0).astype(np.float32)


def _merlin(axis_order: str):
    def build(volume: Volume) -> np.ndarray:
        xyz, spacing = to_ras_xyz(volume)
        ras = Volume(xyz.transpose(2, 1, 0), spacing=spacing)  # back to [z, y, x] for resampling
        zyx = resample_spacing(ras, (1.5, 1.5, 3.0))
        scaled = clip_scale(zyx, -1000.0, 1000.0)
        xyz = center_crop_or_pad(scaled.transpose(2, 1, 0), (224, 224, 160), 0.0)
        return xyz if axis_order == "xyz" else np.ascontiguousarray(xyz.transpose(2, 1, 0))
    return build


def _vila(volume: Volume, reorient: bool) -> np.ndarray:
    xyz = to_ras_xyz(volume)[0] if reorient else volume.array.transpose(2, 1, 0)
    middle = xyz[:, :, xyz.shape[2] // 2]
    return window_to_uint8(middle, -150.0, 250.0)[None]


LOCAL: dict[str, dict[str, LocalSpec]] = {
    "medgemma": {
        "authors": LocalSpec("medgemma", "authors", "slices2d", axis_order="DHW", target_shape=(85, 896, 896),
                             intensity="3 windows -> RGB uint8", num_slices=85, windows=GEMMA_WINDOWS,
                             details={"geometry": "slices", "slice_size": "896x896"},
                             notes="Upstream notebook windows (-1024,1024), (-135,215), (0,80).",
                             build=_slices(GEMMA_WINDOWS, 85, (896, 896))),
        "published": LocalSpec("medgemma", "published", "slices2d", axis_order="DHW", target_shape=(85, 896, 896),
                               intensity="3 windows -> RGB uint8", num_slices=85, windows=GEMMA_PUBLISHED_WINDOWS,
                               details={"geometry": "slices", "slice_size": "896x896"},
                               notes="Published run script's red window (-1225,1025).",
                               build=_slices(GEMMA_PUBLISHED_WINDOWS, 85, (896, 896))),
    },
    "lingshu": {
        variant: LocalSpec("lingshu", variant, "slices2d", axis_order="DHW", intensity="3 windows -> RGB uint8",
                           num_slices=32, windows=GEMMA_WINDOWS, details={"geometry": "slices", "slice_size": "native"},
                           notes="MedEvalKit: 32 uniform slices, native size, smart-resized by the processor.",
                           build=_slices(GEMMA_WINDOWS, 32, None))
        for variant in ("authors", "published")
    },
    "med3dvlm": {
        "authors": LocalSpec("med3dvlm", "authors", "volume3d", target_shape=(128, 256, 256),
                             intensity="clip[-1350,150] -> [0,1]", details={"geometry": "resize"},
                             notes="Training data were display-windowed slices scaled to [0,1].", build=_med3dvlm_authors),
        "published": LocalSpec("med3dvlm", "published", "volume3d", target_shape=(128, 256, 256),
                               intensity="min-max of raw HU -> [0,1]", details={"geometry": "resize"},
                               notes="Published harness: min-max of the raw volume, no HU clip.", build=_med3dvlm_published),
    },
    "m3d-lamed": {
        "authors": LocalSpec("m3d-lamed", "authors", "volume3d", target_shape=(32, 256, 256),
                             intensity="clip[-1350,150] -> [0,1]", details={"geometry": "resize"}, build=_m3d_authors),
        "published": LocalSpec("m3d-lamed", "published", "volume3d", target_shape=(32, 256, 256),
                               intensity="min-max of raw HU -> [0,1]", details={"geometry": "resize"},
                               notes="Published harness: min-max of raw HU.", build=_m3d_published),
    },
    "radfm": {
        variant: LocalSpec("radfm", variant, "volume3d", axis_order="HWD", target_shape=(512, 512, 128),
                           intensity="clip[-1024,1024] -> [0,1]", details={"geometry": "resize", "model_tensor": "(1,1,3,H,W,D)"},
                           build=_radfm)
        for variant in ("authors", "published")
    },
    "ct-chat": {
        variant: LocalSpec("ct-chat", variant, "volume3d", axis_order="DHW", target_shape=(240, 480, 480),
                           target_spacing_mm=(0.75, 0.75, 1.5), intensity="clip[-1000,1000] / 1000 -> [-1,1], pad -1",
                           details={"geometry": "resample_crop"}, build=_ctchat)
        for variant in ("authors", "published")
    },
    "merlin": {
        "authors": LocalSpec("merlin", "authors", "volume3d", orientation="RAS", axis_order="WHD",
                             target_shape=(224, 224, 160), target_spacing_mm=(1.5, 1.5, 3.0),
                             intensity="clip[-1000,1000] -> [0,1]", details={"geometry": "resample_crop"},
                             build=_merlin("xyz")),
        "published": LocalSpec("merlin", "published", "volume3d", orientation="RAS", axis_order="DHW",
                               target_shape=(160, 224, 224), target_spacing_mm=(1.5, 1.5, 3.0),
                               intensity="clip[-1000,1000] -> [0,1]", details={"geometry": "resample_crop"},
                               notes="Published harness fed (z,y,x); the encoder permutes as if (x,y,z): axes scrambled.",
                               build=_merlin("zyx")),
    },
    "vila-m3": {
        "authors": LocalSpec("vila-m3", "authors", "slices2d", orientation="RAS", axis_order="WHD",
                             intensity="window C50/W400 -> 0..255", num_slices=1, windows=((-150.0, 250.0),),
                             details={"geometry": "middle_slice", "slice_size": "native"},
                             build=lambda v: _vila(v, True)),
        "published": LocalSpec("vila-m3", "published", "slices2d", axis_order="WHD",
                               intensity="window C50/W400 -> 0..255", num_slices=1, windows=((-150.0, 250.0),),
                               details={"geometry": "middle_slice", "slice_size": "native"},
                               notes="Published harness: the single middle slice (shape[2]//2).",
                               build=lambda v: _vila(v, False)),
    },
}


def preset(name: str, variant: str):
    """The shared `ctbench.preprocess` preset when registered, else the local stand-in."""
    try:
        from ctbench.preprocess.input_spec import get_spec
    except ImportError:
        return LOCAL[name][variant]
    try:
        return get_spec(name, variant)
    except (KeyError, ImportError):
        return LOCAL[name][variant]


def input_spec_for(name: str, variant: str) -> dict:
    return preset(name, variant).to_dict()
