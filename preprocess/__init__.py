"""Shared preprocessing: load a CT volume once and give every model the input it was trained on,
with orientation guaranteed.

Modules: `volume` (the Volume type, NIfTI loader), `loading` (NIfTI + DICOM series),
`volume_errors`, `orientation` (Reorient, ToAxisOrder), `resampling` (Resample, Resize),
`intensity` (ClipHU, ScaleIntensityRange, NormalizeMinMax, CastDtype), `cropping`
(CenterCropOrPad), `slicing` (SampleSlices, PickSlice, ResizeSlices), `windows` (WindowToUint8,
MultiWindowRGB), `compose` (Compose), `input_spec` + `presets` (InputSpec, get_spec),
`orientation_probe` (the contract phantom), `torch_resampling` (optional), `benchmark`.

Typical use in a model server::

    from ctbench.preprocess.input_spec import get_spec
    spec = get_spec("merlin")            # authors' input; get_spec("merlin", "published") for the harness's
    tensor = spec.apply(volume)          # numpy, shape spec.target_shape, axes spec.axis_order
    # Model.input_spec() returns `spec` itself: the card carries it to Describe (spec.to_proto())
"""
from ctbench.project import require_import_name

require_import_name(__name__, __file__)
