"""The eight seed models' input specs: the authors' input (default) and what the published
CT-SpatialVQA harness fed (``published``), after ``shared/models/MODEL_SPECS.md``.

Every pipeline starts from a `Volume` as loaded (array ``[k, j, i]``, LPS geometry). Where a spec
says "LPS" for a slice model, slices along D are axial images in the radiological display
convention: rows run anterior -> posterior, columns patient right -> left, slice 0 is the most
inferior. Where it says "" the volume is used as stored, like nibabel ``get_fdata()`` transposed
to (z, y, x), which is what the published harness did.

A window followed by a linear resize is built as ``ClipHU -> Resize -> ScaleIntensityRange``:
the affine part commutes with linear interpolation, so this equals windowing to [0, 1] first,
while the full-size volume stays int16 and presets with the same window share one clip.
"""
from __future__ import annotations

from ctbench.preprocess.compose import Compose
from ctbench.preprocess.cropping import CenterCropOrPad
from ctbench.preprocess.input_spec import PRESETS, InputSpec, PresetFamily
from ctbench.preprocess.intensity import ClipHU, NormalizeMinMax, ScaleIntensityRange
from ctbench.preprocess.orientation import Reorient, ToAxisOrder
from ctbench.preprocess.resampling import Resample, Resize
from ctbench.preprocess.slicing import PickSlice, ResizeSlices, SampleSlices
from ctbench.preprocess.windows import CT_RGB_WINDOWS, GrayToRGB, MultiWindowRGB, WindowToUint8

DISPLAY = "LPS"  # axial display convention, see the module docstring


def _register(name: str, *specs: InputSpec) -> None:
    PRESETS.register(name)(PresetFamily(name, {spec.variant: spec for spec in specs}))


def _reorient(code: str) -> list:
    return [Reorient(code)] if code else []


def _windowed_resize(code: str, lower: float, upper: float, shape_dhw, axis_order: str):
    """Window [lower, upper] -> [0, 1], linear resize to shape_dhw, then axis order."""
    return lambda: Compose(
        [ClipHU(lower, upper), *_reorient(code), Resize(shape_dhw, order=1),
         ScaleIntensityRange(lower, upper, 0.0, 1.0), ToAxisOrder(axis_order)]
    )


def _minmax_resize(code: str, shape_dhw, axis_order: str):
    """Min-max of the raw volume -> [0, 1], linear resize to shape_dhw, then axis order."""
    return lambda: Compose(
        [*_reorient(code), NormalizeMinMax(0.0, 1.0), Resize(shape_dhw, order=1), ToAxisOrder(axis_order)]
    )


def _volume_details(model_tensor: str, geometry: str, **extra: str) -> dict:
    return {"geometry": geometry, "model_tensor": model_tensor, "dtype": "float32", "interpolation": "linear, no anti-aliasing", **extra}


# --- 1. Med3DVLM --------------------------------------------------------------------------------
_M3D_WINDOW = (-1350.0, 150.0)
_register(
    "med3dvlm",
    InputSpec(
        "med3dvlm", "authors", "volume3d", DISPLAY, "DHW", (128, 256, 256),
        intensity="clip[-1350,150] -> [0,1]",
        notes=(
            "Authors trained on M3D-Cap: display-windowed 8-bit axial slices stacked along axis 0, scaled to "
            "[0,1], resized to 128x256x256; their FLARE script windows [-1350,150] before min-max (AMOS uses "
            "[-160,240]). We window [-1350,150] and use the display orientation; the foreground crop is not "
            "applied. The published harness instead min-maxed the raw HU volume as stored (variant 'published'), "
            "which compresses soft-tissue contrast."
        ),
        details=_volume_details("(1,1,128,256,256)", "resize", value_range="[0,1]"),
        build=_windowed_resize(DISPLAY, *_M3D_WINDOW, (128, 256, 256), "DHW"),
    ),
    InputSpec(
        "med3dvlm", "published", "volume3d", "", "DHW", (128, 256, 256),
        intensity="min-max of raw HU -> [0,1]",
        notes="Published harness: SimpleITK array (z,y,x) as stored, min-max of the whole raw volume, linear resize; no HU clip.",
        details=_volume_details("(1,1,128,256,256)", "resize", value_range="[0,1]"),
        build=_minmax_resize("", (128, 256, 256), "DHW"),
        differs_from_authors="min-max of raw HU instead of the [-1350,150] window; as stored, not reoriented",
    ),
)

# --- 2. M3D-LaMed -------------------------------------------------------------------------------
_register(
    "m3d-lamed",
    InputSpec(
        "m3d-lamed", "authors", "volume3d", DISPLAY, "DHW", (32, 256, 256),
        intensity="clip[-1350,150] -> [0,1]",
        notes=(
            "Config image_size [32,256,256], 1 channel, values in [0,1]. Upstream only says 'min-max to [0,1]' of "
            "M3D-Cap's display-windowed slices; we use the same window and display orientation as Med3DVLM "
            "(same training data). The published harness min-maxed raw HU as stored (variant 'published')."
        ),
        details=_volume_details("(1,1,32,256,256)", "resize", value_range="[0,1]"),
        build=_windowed_resize(DISPLAY, *_M3D_WINDOW, (32, 256, 256), "DHW"),
    ),
    InputSpec(
        "m3d-lamed", "published", "volume3d", "", "DHW", (32, 256, 256),
        intensity="min-max of raw HU -> [0,1]",
        notes="Published harness: SimpleITK linear resample to 256x256x32 over the same extent, (z,y,x) as stored, min-max [0,1].",
        details=_volume_details("(1,1,32,256,256)", "resize", value_range="[0,1]"),
        build=_minmax_resize("", (32, 256, 256), "DHW"),
        differs_from_authors="min-max of raw HU instead of the [-1350,150] window; as stored, not reoriented",
    ),
)

# --- 3. RadFM -----------------------------------------------------------------------------------
_RADFM_TENSOR = "(1,1,3,H,W,D): repeat the (H,W,D) array over 3 identical channels"
_register(
    "radfm",
    InputSpec(
        "radfm", "authors", "volume3d", DISPLAY, "HWD", (512, 512, 64),
        intensity="clip[-1024,1024] -> [0,1]",
        notes=(
            "Authors stack to H=W=512 with D a multiple of 4 up to 64 (we use 64), values in [0,1], 3 identical "
            "channels. The published harness used 512x512x128 (variant 'published') or, in a second script, "
            "256x256x64 min-max (variant 'published-minmax'); which one produced the reported run is not recorded. "
            "Both fed the volume as stored."
        ),
        details=_volume_details(_RADFM_TENSOR, "resize", value_range="[0,1]"),
        build=_windowed_resize(DISPLAY, -1024.0, 1024.0, (64, 512, 512), "HWD"),
    ),
    InputSpec(
        "radfm", "published", "volume3d", "", "HWD", (512, 512, 128),
        intensity="clip[-1024,1024] -> [0,1]",
        notes="Published script (a): SimpleITK (z,y,x) as stored, transposed to (y,x,z), 512x512x128, clip [-1024,1024] -> [0,1].",
        details=_volume_details(_RADFM_TENSOR, "resize", value_range="[0,1]"),
        build=_windowed_resize("", -1024.0, 1024.0, (128, 512, 512), "HWD"),
        differs_from_authors="512x512x128 instead of 512x512x64; as stored, not reoriented",
    ),
    InputSpec(
        "radfm", "published-minmax", "volume3d", "", "HWD", (256, 256, 64),
        intensity="min-max of raw HU -> [0,1]",
        notes="Published script (b): as stored, (y,x,z), 256x256x64, min-max.",
        details=_volume_details(_RADFM_TENSOR, "resize", value_range="[0,1]"),
        build=_minmax_resize("", (64, 256, 256), "HWD"),
        differs_from_authors="256x256x64, min-max of raw HU instead of clip [-1024,1024]; as stored, not reoriented",
    ),
)

# --- 4. CT-CHAT (CT-CLIP encoder input) ---------------------------------------------------------
def _ct_clip(spacing_ijk):
    def build():
        steps = [ClipHU(-1000.0, 1000.0)]
        if spacing_ijk is not None:
            steps.append(Resample(spacing_ijk, order=1, fill_value=-1000.0))
        else:
            steps.append(_AssumeOneMillimetre())
            steps.append(Resample((0.75, 0.75, 1.5), order=1, fill_value=-1000.0))
        steps += [ScaleIntensityRange(-1000.0, 1000.0, -1.0, 1.0), CenterCropOrPad((240, 480, 480), pad_value=-1.0),
                  ToAxisOrder("DWH")]
        return Compose(steps)

    return build


class _AssumeOneMillimetre:
    """Volume -> same voxels with spacing (1, 1, 1) mm: the published ``encode_embeddings.py`` ignored the header."""

    def __call__(self, volume):
        from ctbench.preprocess.volume import Volume

        return Volume(volume.array, (1.0, 1.0, 1.0), volume.origin, volume.direction, volume.source)

    def __repr__(self) -> str:
        return "AssumeOneMillimetre()"


_CTCLIP_DETAILS = _volume_details(
    "(1,1,240,480,480) -> CT-CLIP CTViT -> tokens (1,24,24,24,512)", "resample_crop",
    value_range="[-1,1]", pad_value="-1", fill_value_hu="-1000",
)
_register(
    "ct-chat",
    InputSpec(
        "ct-chat", "authors", "volume3d", "", "DWH", (240, 480, 480), (0.75, 0.75, 1.5),
        intensity="clip[-1000,1000] / 1000 -> [-1,1]",
        notes=(
            "As upstream CT-CLIP encode_script.py: slope/intercept applied, clip +-1000 HU, trilinear resample to "
            "xy 0.75 mm, z 1.5 mm using the header spacing, /1000, centre crop/pad (x,y,z) to 480x480x240 with -1, "
            "permuted to (z,x,y). No reorientation: CT-RATE volumes are used as stored, and other sources must be "
            "stored the way CT-RATE is (not documented upstream). The published harness fed the same tensor "
            "(variant 'published'); its other script encode_embeddings.py ignored the header spacing and assumed "
            "1 mm (variant 'published-1mm'). The harness also sent neither <image> nor <provided>, so the volume "
            "may never have reached the LLM: a prompt matter for the model server."
        ),
        details=_CTCLIP_DETAILS,
        build=_ct_clip((0.75, 0.75, 1.5)),
    ),
    InputSpec(
        "ct-chat", "published", "volume3d", "", "DWH", (240, 480, 480), (0.75, 0.75, 1.5),
        intensity="clip[-1000,1000] / 1000 -> [-1,1]",
        notes="Published preprocess_ctchat.py: identical to the authors' encode_script.py (header spacing read).",
        details=_CTCLIP_DETAILS,
        build=_ct_clip((0.75, 0.75, 1.5)),
    ),
    InputSpec(
        "ct-chat", "published-1mm", "volume3d", "", "DWH", (240, 480, 480), (0.75, 0.75, 1.5),
        intensity="clip[-1000,1000] / 1000 -> [-1,1]",
        notes="Published encode_embeddings.py: header spacing ignored, 1 mm assumed, so the physical scale is wrong.",
        details={**_CTCLIP_DETAILS, "spacing_source": "assumed 1 mm"},
        build=_ct_clip(None),
        differs_from_authors="header spacing ignored: every voxel taken as 1 mm",
    ),
)

# --- 5. MedGemma 1.5 ----------------------------------------------------------------------------
def _rgb_slices(code: str, count: int, windows, size=None):
    def build():
        steps = [*_reorient(code), ToAxisOrder("DHW"), SampleSlices(count, axis=0), MultiWindowRGB(windows)]
        if size is not None:
            steps.append(ResizeSlices(size, order=1))
        return Compose(steps)

    return build


def _slice_details(size: str, **extra: str) -> dict:
    return {"geometry": "slices", "slice_size": size, "dtype": "uint8", "channels": "RGB, one window each",
            "slice_sampling": "round(linspace(0, n-1, num_slices)), all slices if fewer", **extra}


_MEDGEMMA_PUBLISHED_WINDOWS = ((-1225.0, 1025.0), (-135.0, 215.0), (0.0, 80.0))
_register(
    "medgemma",
    InputSpec(
        "medgemma", "authors", "slices2d", DISPLAY, "DHW", (85, 896, 896),
        intensity="3 windows -> RGB uint8", num_slices=85, windows=CT_RGB_WINDOWS,
        notes=(
            "Upstream notebook: 85 linspace axial slices, windows (-1024,1024), (-135,215), (0,80) -> R,G,B uint8, "
            "bilinear resize to 896x896, sent as JPEG (encoding is the server's job). Slices in display orientation. "
            "The published run script used R window (-1225,1025) and no reorientation (variant 'published'); its "
            "notebook and summary said -1024/1024."
        ),
        details=_slice_details("896x896", model_tensor="85 images, each followed by 'SLICE i'"),
        build=_rgb_slices(DISPLAY, 85, CT_RGB_WINDOWS, (896, 896)),
    ),
    InputSpec(
        "medgemma", "published", "slices2d", "", "DHW", (85, 896, 896),
        intensity="3 windows -> RGB uint8", num_slices=85, windows=_MEDGEMMA_PUBLISHED_WINDOWS,
        notes="Published run script: nibabel get_fdata (x,y,z) transposed to (z,y,x), no reorientation, R window (-1225,1025).",
        details=_slice_details("896x896", model_tensor="85 images, each followed by 'SLICE i'"),
        build=_rgb_slices("", 85, _MEDGEMMA_PUBLISHED_WINDOWS, (896, 896)),
        differs_from_authors="red window (-1225,1025) instead of (-1024,1024); as stored, not reoriented",
    ),
)

# --- 6. Merlin ----------------------------------------------------------------------------------
def _merlin(axis_order: str):
    return lambda: Compose(
        [Reorient("RAS"), Resample((1.5, 1.5, 3.0), order=1, fill_value=-1000.0),
         ScaleIntensityRange(-1000.0, 1000.0, 0.0, 1.0), CenterCropOrPad((160, 224, 224), pad_value=0.0),
         ToAxisOrder(axis_order)]
    )


_MERLIN_DETAILS = dict(value_range="[0,1]", pad_value="0", fill_value_hu="-1000")
_register(
    "merlin",
    InputSpec(
        "merlin", "authors", "volume3d", "RAS", "WHD", (224, 224, 160), (1.5, 1.5, 3.0),
        intensity="clip[-1000,1000] -> [0,1]",
        notes=(
            "Upstream MONAI pipeline: Orientation RAS, Spacing (1.5,1.5,3) bilinear, ScaleIntensityRange "
            "-1000..1000 -> 0..1 clipped, pad then centre crop to [224,224,160]: tensor (B,1,224,224,160) = (x,y,z); "
            "the encoder permutes to depth-first itself. The published harness fed the same numbers as (z,y,x) = "
            "(1,1,160,224,224) (variant 'published'), which the internal permute scrambles."
        ),
        details=_volume_details("(1,1,224,224,160)", "resample_crop", **_MERLIN_DETAILS),
        build=_merlin("WHD"),
    ),
    InputSpec(
        "merlin", "published", "volume3d", "RAS", "DHW", (160, 224, 224), (1.5, 1.5, 3.0),
        intensity="clip[-1000,1000] -> [0,1]",
        notes="Published harness: same numbers via SimpleITK but fed (z,y,x) = (1,1,160,224,224): axes scrambled after Merlin's internal permute.",
        details=_volume_details("(1,1,160,224,224)", "resample_crop", **_MERLIN_DETAILS),
        build=_merlin("DHW"),
        differs_from_authors="axis order (z,y,x) instead of (x,y,z)",
    ),
)

# --- 7. VILA-M3 (+ VISTA3D) ---------------------------------------------------------------------
def _vila():
    return Compose(
        [Reorient(DISPLAY), ToAxisOrder("DHW"), PickSlice(axis=0, index="middle"),
         WindowToUint8(-150.0, 250.0, rounding="floor"), GrayToRGB()]
    )


class _StoredMiddleAxialSlice:
    """Volume -> ``(1, rows, cols)``: reoriented to display orientation (as MONAI's Orientation RAS,
    then the authors' rotation), the axial slice at index ``stored k // 2`` of the file as stored
    (the published harness's ``nib.shape[2] // 2``): the middle slice only when k is the axial axis."""

    def __call__(self, volume):
        from ctbench.errors import InvalidVolume

        index = volume.shape_ijk[2] // 2
        stack = ToAxisOrder("DHW")(Reorient(DISPLAY)(volume))
        if index >= stack.shape[0]:
            raise InvalidVolume(
                f"{volume.source or 'volume'}: the published VILA-M3 slice index nib.shape[2] // 2 = {index} lies "
                f"outside the {stack.shape[0]} axial slices (the file is not stored axially)"
            )
        return PickSlice(axis=0, index=index)(stack)

    def __repr__(self) -> str:
        return "StoredMiddleAxialSlice()"


def _vila_published():
    return Compose([_StoredMiddleAxialSlice(), WindowToUint8(-150.0, 250.0, rounding="floor"), GrayToRGB()])


_VILA_DETAILS = {"geometry": "middle_slice", "slice_size": "native", "dtype": "uint8",
                 "model_tensor": "1 JPEG slice, plus the VISTA3D overlay of the same slice as a second image",
                 "channels": "3 identical grey channels", "slice_index": "n_slices // 2",
                 "expert": "VISTA3D 'everything' runs on the full raw-HU volume; its overlay is a second image"}
_register(
    "vila-m3",
    InputSpec(
        "vila-m3", "authors", "slices2d", DISPLAY, "DHW", (),
        intensity="window C50/W400 [-150,250] -> 0..255 (truncated)", num_slices=1, windows=((-150.0, 250.0),),
        notes=(
            "Upstream (VLM-Radiology-Agent-Framework): MONAI LoadImage, Orientation RAS, window C50/W400 -> 0..255, "
            "slice along axis 2, written as np.rot90(swapaxes(slice), 2): an axial image in display orientation "
            "(rows anterior->posterior, columns right->left), 3 grey channels, uint8 by truncation. The middle slice "
            "is the default. The published harness did the same (MONAI Orientation RAS, so it does reorient) with "
            "index nib.shape[2]//2 of the file as stored, which is the middle axial slice only for axially stored "
            "volumes (variant 'published'); prompts differ."
        ),
        details=_VILA_DETAILS,
        build=_vila,
    ),
    InputSpec(
        "vila-m3", "published", "slices2d", DISPLAY, "DHW", (),
        intensity="window C50/W400 [-150,250] -> 0..255 (truncated)", num_slices=1, windows=((-150.0, 250.0),),
        notes=(
            "Published harness: reoriented as the authors' (MONAI Orientation RAS), the same slice writer with index "
            "nib.shape[2]//2 of the file as stored: the middle axial slice when k is the axial axis, another slice "
            "(or an error, when out of range) otherwise."
        ),
        details={**_VILA_DETAILS, "slice_index": "stored k // 2 (nib.shape[2] // 2)"},
        build=_vila_published,
        differs_from_authors="slice index nib.shape[2] // 2 of the stored file: another slice when k is not the axial axis",
    ),
)

# --- 8. Lingshu ---------------------------------------------------------------------------------
_register(
    "lingshu",
    InputSpec(
        "lingshu", "authors", "slices2d", DISPLAY, "DHW", (),
        intensity="3 windows -> RGB uint8", num_slices=32, windows=CT_RGB_WINDOWS,
        notes=(
            "MedEvalKit: 32 linspace axial slices, windows (-1024,1024), (-135,215), (0,80) -> RGB uint8, native "
            "size (qwen_vl_utils smart-resizes 512 to 504). Lingshu was trained on display-oriented 2D images, so "
            "the default reorients to display orientation; the published harness used nibabel (z,y,x) as stored "
            "with no reorientation (variant 'published'), which is the same input only for volumes stored LPS "
            "(rows anterior->posterior, columns right->left, k inferior->superior)."
        ),
        details=_slice_details("native", model_tensor="32 PIL images, each followed by 'SLICE i'"),
        build=_rgb_slices(DISPLAY, 32, CT_RGB_WINDOWS),
    ),
    InputSpec(
        "lingshu", "published", "slices2d", "", "DHW", (),
        intensity="3 windows -> RGB uint8", num_slices=32, windows=CT_RGB_WINDOWS,
        notes="Published harness: nibabel get_fdata transposed to (z,y,x), as stored, 32 linspace slices, native size.",
        details=_slice_details("native", model_tensor="32 PIL images, each followed by 'SLICE i'"),
        build=_rgb_slices("", 32, CT_RGB_WINDOWS),
        differs_from_authors="as stored, not reoriented (the same slices as authors only for volumes stored LPS)",
    ),
)
