"""The eight presets against MODEL_SPECS.md: shapes, dtypes, value ranges, declared fields."""
from __future__ import annotations

import numpy as np
import pytest

from ctbench.errors import UnknownName
from ctbench.preprocess.input_spec import PRESETS, InputSpec, get_spec, preset_names
from ctbench.preprocess.volume import Volume

SEED_MODELS = ["ct-chat", "lingshu", "m3d-lamed", "med3dvlm", "medgemma", "merlin", "radfm", "vila-m3"]
PROTO_FIELDS = {
    "name", "variant", "kind", "orientation", "axis_order", "target_shape", "target_spacing_mm",
    "intensity", "num_slices", "windows", "notes", "details",
}
ALL_SPECS = [(name, variant) for name in SEED_MODELS for variant in sorted(PRESETS.get(name).variants)] if preset_names() else []


@pytest.fixture(scope="module")
def ct_volume():
    """A small CT-like volume, 90 axial slices (more than MedGemma's 85), stored LPS."""
    rng = np.random.default_rng(1)
    array = np.full((90, 40, 36), -1000, dtype=np.int16)
    array[:, 8:32, 6:30] = rng.integers(-200, 400, size=(90, 24, 24))
    array[40:50, 15:25, 10:20] = 1500
    return Volume(array, (0.8, 0.75, 2.0), (0.0, 0.0, 0.0))


def test_all_eight_seed_models_are_registered_with_authors_and_published():
    assert preset_names() == SEED_MODELS
    for name in SEED_MODELS:
        family = PRESETS.get(name)
        assert {"authors", "published"} <= set(family.variants)
        assert get_spec(name) is family.variants["authors"]


def test_unknown_names_list_what_is_available():
    with pytest.raises(UnknownName, match="Available: ct-chat, lingshu"):
        get_spec("gpt-ct")
    with pytest.raises(UnknownName, match="Available: authors, published"):
        get_spec("merlin", "nightly")


@pytest.mark.parametrize("name, variant", ALL_SPECS)
def test_to_dict_has_exactly_the_proto_fields_and_converts(name, variant):
    spec = get_spec(name, variant)
    fields = spec.to_dict()
    assert set(fields) == PROTO_FIELDS
    assert fields["name"] == name and fields["variant"] == variant
    assert fields["kind"] in ("volume3d", "slices2d", "none")
    assert all(isinstance(v, int) for v in fields["target_shape"])
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields["details"].items())
    assert all(len(w) == 2 and w[0] < w[1] for w in fields["windows"])
    assert fields["notes"], "every spec says where it comes from"
    message = spec.to_proto()
    assert message.name == name and list(message.target_shape) == fields["target_shape"]
    assert [[w.lower, w.upper] for w in message.windows] == fields["windows"]


@pytest.mark.parametrize("name", SEED_MODELS)
def test_authors_spec_says_how_the_published_harness_differs(name):
    notes = get_spec(name, "authors").notes.lower()
    assert "published" in notes


# name, variant -> (output shape for ct_volume, dtype, (min, max) allowed), from MODEL_SPECS.md
EXPECTED = {
    ("med3dvlm", "authors"): ((128, 256, 256), np.float32, (0.0, 1.0)),
    ("med3dvlm", "published"): ((128, 256, 256), np.float32, (0.0, 1.0)),
    ("m3d-lamed", "authors"): ((32, 256, 256), np.float32, (0.0, 1.0)),
    ("m3d-lamed", "published"): ((32, 256, 256), np.float32, (0.0, 1.0)),
    ("radfm", "authors"): ((512, 512, 64), np.float32, (0.0, 1.0)),
    ("radfm", "published"): ((512, 512, 128), np.float32, (0.0, 1.0)),
    ("radfm", "published-minmax"): ((256, 256, 64), np.float32, (0.0, 1.0)),
    ("ct-chat", "authors"): ((240, 480, 480), np.float32, (-1.0, 1.0)),
    ("ct-chat", "published"): ((240, 480, 480), np.float32, (-1.0, 1.0)),
    ("ct-chat", "published-1mm"): ((240, 480, 480), np.float32, (-1.0, 1.0)),
    ("medgemma", "authors"): ((85, 896, 896, 3), np.uint8, (0, 255)),
    ("medgemma", "published"): ((85, 896, 896, 3), np.uint8, (0, 255)),
    ("merlin", "authors"): ((224, 224, 160), np.float32, (0.0, 1.0)),
    ("merlin", "published"): ((160, 224, 224), np.float32, (0.0, 1.0)),
    ("vila-m3", "authors"): ((1, 40, 36, 3), np.uint8, (0, 255)),
    ("vila-m3", "published"): ((1, 40, 36, 3), np.uint8, (0, 255)),
    ("lingshu", "authors"): ((32, 40, 36, 3), np.uint8, (0, 255)),
    ("lingshu", "published"): ((32, 40, 36, 3), np.uint8, (0, 255)),
}


def test_expected_table_covers_every_registered_spec():
    assert set(EXPECTED) == set(ALL_SPECS)


@pytest.mark.parametrize("name, variant", sorted(EXPECTED))
def test_preset_output_shape_dtype_and_range(ct_volume, name, variant):
    shape, dtype, (low, high) = EXPECTED[(name, variant)]
    spec = get_spec(name, variant)
    out = spec.apply(ct_volume)
    assert out.shape == shape and out.dtype == dtype and out.flags.c_contiguous and out.flags.writeable
    assert low <= out.min() and out.max() <= high
    assert out.max() > out.min(), "the output is not blank"
    if spec.target_shape:
        assert out.shape[: len(spec.target_shape)] == spec.target_shape


@pytest.mark.parametrize(
    "name, variant, fields",
    [
        ("medgemma", "authors", {"num_slices": 85, "windows": [[-1024, 1024], [-135, 215], [0, 80]], "orientation": "LPS"}),
        ("medgemma", "published", {"windows": [[-1225, 1025], [-135, 215], [0, 80]], "orientation": ""}),
        ("merlin", "authors", {"orientation": "RAS", "axis_order": "WHD", "target_spacing_mm": [1.5, 1.5, 3.0]}),
        ("merlin", "published", {"orientation": "RAS", "axis_order": "DHW", "target_shape": [160, 224, 224]}),
        ("vila-m3", "authors", {"num_slices": 1, "windows": [[-150, 250]]}),
        ("lingshu", "authors", {"num_slices": 32, "target_shape": []}),
        ("ct-chat", "authors", {"axis_order": "DWH", "target_spacing_mm": [0.75, 0.75, 1.5], "orientation": ""}),
        ("radfm", "published", {"axis_order": "HWD", "orientation": ""}),
        ("m3d-lamed", "published", {"intensity": "min-max of raw HU -> [0,1]", "orientation": ""}),
        ("med3dvlm", "published", {"intensity": "min-max of raw HU -> [0,1]"}),
    ],
)
def test_declared_fields_match_model_specs(name, variant, fields):
    declared = get_spec(name, variant).to_dict()
    for key, value in fields.items():
        assert declared[key] == value, key


def test_radfm_depth_is_a_multiple_of_four_up_to_64():
    for variant in ("authors", "published-minmax"):
        depth = get_spec("radfm", variant).target_shape[2]
        assert depth % 4 == 0 and depth <= 64


def test_medgemma_published_red_channel_uses_the_wider_window(ct_volume):
    authors = get_spec("medgemma", "authors").apply(ct_volume)
    published = get_spec("medgemma", "published").apply(ct_volume)
    assert not np.array_equal(authors[..., 0], published[..., 0])
    assert np.array_equal(authors[..., 1], published[..., 1])  # green window and geometry agree (LPS stored)


def test_merlin_variants_hold_the_same_voxels_in_different_axis_orders(ct_volume):
    authors = get_spec("merlin", "authors").apply(ct_volume)
    published = get_spec("merlin", "published").apply(ct_volume)
    assert np.array_equal(np.transpose(authors, (2, 1, 0)), published)


def test_vila_takes_the_middle_axial_slice(ct_volume):
    out = get_spec("vila-m3").apply(ct_volume)
    # LPS display orientation of an LPS-stored volume: slice 90 // 2 = 45 holds the bright insert
    assert out.shape[0] == 1 and (out[0, 15:25, 10:20] == 255).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "video"}, "kind must be one of"),
        ({"orientation": "XYZ"}, "orientation code"),
        ({"axis_order": "DDW"}, "axis order"),
        ({"details": {"geometry": "warp"}}, "geometry"),
    ],
)
def test_bad_spec_declarations_fail_at_construction(kwargs, message):
    base = {"name": "x", "variant": "authors", "kind": "volume3d"}
    with pytest.raises(ValueError, match=message):
        InputSpec(**{**base, **kwargs})


def test_spec_without_pipeline_says_so():
    spec = InputSpec("chance", "authors", "none")
    assert spec.to_dict()["axis_order"] == ""
    with pytest.raises(ValueError, match="no pipeline"):
        spec.apply(None)


def test_a_volume_and_everything_derived_from_it_are_freed_after_use():
    import gc
    import weakref

    rng = np.random.default_rng(0)
    volume = Volume(rng.integers(-1000, 1000, (20, 24, 24)).astype(np.int16), (0.8, 0.8, 2.0))
    for name in SEED_MODELS:
        get_spec(name).apply(volume)
        get_spec(name, "published").apply(volume)
    ref = weakref.ref(volume)
    gc.disable()  # no reference cycles: freed by reference counting alone, as soon as it is dropped
    try:
        del volume
        assert ref() is None, "cached images / shared steps keep the volume alive (or form a cycle)"
    finally:
        gc.enable()
