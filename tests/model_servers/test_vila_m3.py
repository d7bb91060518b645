"""VILA-M3 with the VISTA3D expert: the bundle (a tiny random-weight MONAI VISTA3D in the layout
`monai.bundle download` produces), the authors' overlay orientation and colours, their trigger
parsing and expert turn, the training-only import stand-ins, and the server answering over real
loopback gRPC through VISTA3D. VILA itself is replaced at one seam, `VilaM3.load_vlm`, by a
scripted generator that records the images and prompts it is given: VILA's code is not
installable here (it needs the authors' checkout and pins torch 2.3 / transformers 4.37)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("monai")
pytest.importorskip("skimage")
pytest.importorskip("ignite")

from ctbench.errors import ModelNotReady
from ctbench.model_servers.vila_m3 import server as vila
from ctbench.model_servers.vila_m3 import tiny_vista3d
from ctbench.model_servers.vila_m3.vista3d_bundle import (
    BUNDLE_FILES,
    CHECKPOINT,
    INFERENCE_CONFIG,
    Vista3DBundle,
    load_ras,
)
from ctbench.model_servers.vila_m3.vista3d_expert import (
    ExpertResult,
    TriggerError,
    colormap,
    colour_overlay,
    display_slice,
    mentions_vista3d,
    requested_group,
    result_text,
)
from ctbench.model_servers.vlm_common.loopback import ask, health, serving
from ctbench.preprocess.volume import Volume, save_volume

GROUPS = tiny_vista3d.LABEL_GROUPS
QUESTION = "Which side is the marker on?"


# --- fixtures -------------------------------------------------------------------------------------
def marker_volume(direction=np.eye(3), shape=(10, 24, 24)) -> tuple[Volume, np.ndarray]:
    """A soft-tissue slab with a bright marker in one corner of every slice: anterior-right in LPS
    terms for the identity direction, wherever `direction` puts it otherwise. Returns the volume
    and the marker mask (same array order)."""
    array = np.full(shape, -50, np.int16)
    mask = np.zeros(shape, bool)
    mask[:, 2:7, 3:9] = True  # low j, low i: a corner, asymmetric under any flip or transpose
    array[mask] = 200
    return Volume(array, spacing=(1.0, 1.0, 2.0), direction=direction), mask


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A weights directory: VILA's three config files (content unused: VILA is stubbed) and the bundle."""
    root = tmp_path_factory.mktemp("vila-weights")
    for name in ("llm", "vision_tower", "mm_projector"):
        (root / name).mkdir()
        (root / name / "config.json").write_text("{}")
    tiny_vista3d.write_bundle(root / "vista3d")
    return root


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    return tiny_vista3d.write_checkout(tmp_path_factory.mktemp("framework"))


class ScriptedVILA:
    """Stands in for VILA: answers from a script keyed by the prompt's last user turn, records calls."""

    def __init__(self, first_answer: str, second_answer: str = "left"):
        self.first_answer, self.second_answer = first_answer, second_answer
        self.calls: list[tuple[list[np.ndarray], str]] = []

    def generate(self, images, prompt):
        self.calls.append(([np.array(i) for i in images], prompt))
        expert_turn = vila.authors_prompt("x").count("<|start_header_id|>user") < prompt.count("<|start_header_id|>user")
        return (self.second_answer if expert_turn else self.first_answer) + "<|eot_id|>"


class StubbedVilaM3(vila.VilaM3):
    script: ScriptedVILA

    def load_vlm(self):
        return self.script


def stubbed(script: ScriptedVILA, **options) -> StubbedVilaM3:
    model = StubbedVilaM3(**options)
    model.script = script
    return model


# --- the bundle -----------------------------------------------------------------------------------
def test_tiny_bundle_segments_a_volume_in_ras(weights):
    volume, _ = marker_volume()
    labels = Vista3DBundle(weights / "vista3d").segment(volume)
    assert labels.shape == volume.shape_ijk and labels.dtype == np.uint8  # (x, y, z): LPS identity -> RAS keeps sizes
    assert set(np.unique(labels)) <= {0, *tiny_vista3d.EVERYTHING_LABELS}
    only_spleen = Vista3DBundle(weights / "vista3d").segment(volume, label_prompt=[3])
    assert set(np.unique(only_spleen)) <= {0, 3}


@pytest.mark.parametrize("missing", BUNDLE_FILES)
def test_missing_bundle_file_is_named(weights, tmp_path, missing):
    bundle = tiny_vista3d.write_bundle(tmp_path / "vista3d")
    (bundle / missing).unlink()
    with pytest.raises(ModelNotReady, match=f"has no {missing}.*monai.bundle download vista3d"):
        Vista3DBundle(bundle).check()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: (b / INFERENCE_CONFIG).write_text("{not json"), "inference.json is not valid JSON"),
        (lambda b: (b / CHECKPOINT).write_bytes(b"not a checkpoint"), "cannot read the VISTA3D checkpoint"),
        (lambda b: _prefix_checkpoint(b / CHECKPOINT), "model.pt does not match network_def"),
    ],
    ids=["config-json", "checkpoint-bytes", "checkpoint-prefixed-keys"],
)
def test_broken_bundle_is_named(tmp_path, damage, message):
    bundle = tiny_vista3d.write_bundle(tmp_path / "vista3d")
    damage(bundle)
    with pytest.raises(ModelNotReady, match=message):
        Vista3DBundle(bundle).check()


def _prefix_checkpoint(path: Path) -> None:
    import torch

    state = torch.load(path, weights_only=True)
    torch.save({f"module.{k}": v for k, v in state.items()}, path)


def test_server_without_bundle_config_is_not_serving_and_says_which_file(weights, checkout, tmp_path):
    broken = tmp_path / "weights"
    for name in ("llm", "vision_tower", "mm_projector"):
        (broken / name).mkdir(parents=True)
        (broken / name / "config.json").write_text("{}")
    bundle = tiny_vista3d.write_bundle(broken / "vista3d")
    (bundle / INFERENCE_CONFIG).unlink()
    model = stubbed(ScriptedVILA("unused"), weights=str(broken), repo=str(checkout), device="cpu")
    with serving(model, tmp_path, wait_loaded=False) as (address, server):
        server.loaded.wait(timeout=0.1)
        _wait_for_load_outcome(server)
        assert health(address) == "NOT_SERVING"
        assert "configs/inference.json" in server.core.load_error and "FileNotFoundError" not in server.core.load_error


def _wait_for_load_outcome(server, attempts: int = 600) -> None:
    import time

    for _ in range(attempts):
        if server.core.load_error is not None or server.model.ready:
            return
        time.sleep(0.05)


# --- orientation and colours ---------------------------------------------------------------------
def authors_dye_slice(ras: np.ndarray, index: int) -> np.ndarray:
    """The authors' transform, written out as their `Dye.__call__` has it (m3/demo/experts/utils.py)."""
    s = np.take(ras, index, axis=2)
    return np.rot90(np.swapaxes(s.astype(np.uint8), 0, 1), k=2)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


DIRECTIONS = {
    "LPS": np.eye(3),
    "RAS": np.diag([-1.0, -1.0, 1.0]),
    "LPI": np.diag([1.0, 1.0, -1.0]),
}


@pytest.mark.parametrize("code", DIRECTIONS)
def test_overlay_lands_on_the_marker_as_the_authors_transform_puts_it(tmp_path, code):
    """A label map of the marker, read back in RAS as the expert reads the bundle's output, turned
    by the authors' transform, covers the marker on the slice the model sees (IoU 1); the label
    slice painted without the transform, as the server did before, misses it (IoU 0)."""
    volume, mask = marker_volume(DIRECTIONS[code])
    save_volume(volume.with_array(mask.astype(np.uint8)), tmp_path / "label.nii.gz")
    labels_ras = load_ras(tmp_path / "label.nii.gz")
    middle = labels_ras.shape[2] // 2

    seen = vila.VilaM3().preprocess(volume).slice_rgb[..., 0]  # what VILA-M3 is shown
    marker_on_screen = seen > 200 - 1
    assert marker_on_screen.any()

    ours = display_slice(labels_ras, middle)
    assert np.array_equal(ours, authors_dye_slice(labels_ras, middle))
    assert iou(ours > 0, marker_on_screen) == 1.0
    unturned = labels_ras[:, :, middle]  # the old overlay: the (x, y) RAS slice as is
    assert iou(unturned > 0, marker_on_screen) == 0.0


def test_legend_names_each_colour_as_painted():
    from skimage.color import color_dict

    image = np.full((6, 6), 100, np.uint8)
    labels = np.zeros((6, 6), np.uint8)
    labels[0, :2], labels[2, :2], labels[4, :2] = 6, 1, 99  # 99: in no label group
    assert colormap(labels) == {1: "red", 6: "blue", 99: "yellow"}
    overlay = colour_overlay(image, labels)
    for label, name in colormap(labels).items():
        painted = overlay[labels == label][0].astype(float)
        expected = (0.3 * np.asarray(color_dict[name]) + 0.7 * 100 / 255) * 255  # label2rgb's alpha 0.3
        assert np.allclose(painted, expected, atol=1.0), (label, name, painted, expected)
    # label2rgb's default bg_color is black: the authors' overlay darkens unlabelled pixels to 70 %.
    assert np.allclose(overlay[5, 5], 0.7 * 100, atol=1.0)
    assert result_text(labels, GROUPS) == "The results are <image>. The colors in this image describe red: liver, blue: aorta. "


def test_expert_turn_text_as_the_framework_sends_it():
    labels = np.zeros((4, 4), np.uint8)
    labels[0, 0] = 3
    image = np.zeros((4, 4), np.uint8)
    turn = ExpertResult.build(image, labels, GROUPS, QUESTION, trigger="Let me trigger <VISTA3D(organs)>.")
    assert turn.text == ("The results are <image>. The colors in this image describe red: spleen. "
                         "Use this result to respond to this prompt:\n" + QUESTION)
    assert turn.asks_again and turn.overlay.shape == (4, 4, 3)
    assert not ExpertResult.build(image, labels, GROUPS, QUESTION, trigger="<VISTA3D> segmented").asks_again


@pytest.mark.parametrize(
    "text, group",
    [
        ("This looks like a CT image. Let me trigger <VISTA3D(everything)>.", "everything"),
        ("Let me trigger <VISTA3D(organs)>.", "organs"),
        ("<VISTA3D>", "everything"),
        ("<VISTA3D()>", "everything"),
    ],
)
def test_trigger_names_a_label_group(text, group):
    assert mentions_vista3d(text) and requested_group(text, GROUPS) == group


@pytest.mark.parametrize(
    "text",
    ["<VISTA3D(lung nodules)>", "<VISTA3D(organs)(skeleton)>"],
)
def test_trigger_the_expert_refuses(text):
    with pytest.raises(TriggerError):
        requested_group(text, GROUPS)


@pytest.mark.parametrize("text", ["The left lung.", "<VISTA3D(organs)> and <BRATS>", "<CXR()>"])
def test_text_that_is_not_a_vista3d_call(text):
    assert not mentions_vista3d(text)


# --- the server over loopback gRPC ---------------------------------------------------------------
@pytest.fixture(scope="module")
def marker_data(tmp_path_factory) -> dict:
    import hashlib

    root = tmp_path_factory.mktemp("vila-data")
    volume, _ = marker_volume()
    save_volume(volume, root / "marker.nii.gz")
    digest = hashlib.sha256((root / "marker.nii.gz").read_bytes()).hexdigest()
    return {"root": root, "relative": "marker.nii.gz", "volume_id": f"sha256:{digest}", "volume": volume}


def expected_expert(weights: Path, volume: Volume, group: str, trigger: str = "") -> ExpertResult:
    """The expert turn rebuilt outside the server: the bundle run directly, the authors' slice."""
    labels = Vista3DBundle(weights / "vista3d").segment(volume, None if group == "everything" else list(GROUPS[group].values()))
    grey = vila.VilaM3().preprocess(volume).slice_rgb[..., 0]
    return ExpertResult.build(grey, display_slice(labels, labels.shape[2] // 2), GROUPS, QUESTION, trigger)


def test_authors_variant_answers_through_vista3d_after_the_models_trigger(weights, checkout, marker_data):
    trigger = "This looks like a CT image. Let me trigger <VISTA3D(organs)>."
    script = ScriptedVILA(trigger, "The marker is on the right.")
    model = stubbed(script, weights=str(weights), repo=str(checkout), device="cpu")
    with serving(model, marker_data["root"]) as (address, _):
        answers = ask(address, marker_data["relative"], marker_data["volume_id"], [QUESTION])
    assert answers["v::0"].text == "The marker is on the right."

    (first_images, first_prompt), (second_images, second_prompt) = script.calls
    assert first_prompt == vila.authors_prompt(QUESTION) and len(first_images) == 1
    expert = expected_expert(weights, marker_data["volume"], "organs", trigger)
    assert second_prompt == vila.authors_expert_prompt(QUESTION, trigger, expert.text)
    assert second_prompt.count("<image>") == 2
    assert np.array_equal(second_images[0], first_images[0])
    assert np.array_equal(second_images[1], expert.overlay)


def test_authors_variant_without_a_trigger_answers_once(weights, checkout, marker_data):
    script = ScriptedVILA("The right side.")
    model = stubbed(script, weights=str(weights), repo=str(checkout), device="cpu")
    with serving(model, marker_data["root"]) as (address, _):
        answers = ask(address, marker_data["relative"], marker_data["volume_id"], [QUESTION])
    assert answers["v::0"].text == "The right side." and len(script.calls) == 1


def test_published_variant_always_sends_the_everything_overlay(weights, checkout, marker_data):
    script = ScriptedVILA("right")
    model = stubbed(script, variant="published", weights=str(weights), repo=str(checkout), device="cpu")
    with serving(model, marker_data["root"]) as (address, _):
        answers = ask(address, marker_data["relative"], marker_data["volume_id"], [QUESTION])
    assert answers["v::0"].text == "right"
    ((images, prompt),) = script.calls
    expert = expected_expert(weights, marker_data["volume"], "everything")
    assert prompt == vila.published_prompt(QUESTION, expert.text)
    assert np.array_equal(images[1], expert.overlay)


# --- load-time imports ----------------------------------------------------------------------------
SHIM_CHECK = textwrap.dedent("""
    import importlib.util, json, sys
    from ctbench.model_servers.vila_m3 import import_shims
    installed = import_shims.install()
    import deepspeed.comm as dist                                   # llava/train/sequence_parallel/globals.py
    from flash_attn.bert_padding import pad_input, unpad_input      # llava/.../intern/flash_attention.py
    try:
        from flash_attn.flash_attn_interface import flash_attn_unpadded_qkvpacked_func
    except ImportError:
        from flash_attn.flash_attn_interface import flash_attn_varlen_qkvpacked_func
    try:
        pad_input(1)
        called = "no error"
    except import_shims.ShimCalled as exc:
        called = str(exc)
    from transformers.utils import is_flash_attn_2_available
    print(json.dumps({"installed": installed, "called": called, "flash": is_flash_attn_2_available(),
                      "real": not import_shims.is_shim(sys.modules["deepspeed"])}))
""")


def test_training_only_imports_get_stand_ins_that_refuse_to_run():
    out = subprocess.run([sys.executable, "-c", SHIM_CHECK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["installed"] == ["deepspeed", "flash_attn"]
    assert "flash_attn.bert_padding.pad_input was called, but flash_attn is not installed" in report["called"]
    assert report["flash"] is False  # transformers does not mistake the stand-in for flash-attn
    assert report["real"] is False


def test_an_installed_package_is_not_shadowed(tmp_path):
    (tmp_path / "deepspeed").mkdir()
    (tmp_path / "deepspeed" / "__init__.py").write_text("REAL = True\n")
    (tmp_path / "deepspeed" / "comm.py").write_text("")
    out = subprocess.run([sys.executable, "-c", SHIM_CHECK], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["installed"] == ["flash_attn"] and report["real"] is True


def test_a_module_vilas_code_needs_and_lacks_is_named(weights, tmp_path, monkeypatch):
    monkeypatch.setattr(vila.import_shims, "install", lambda: [])  # keep this process's sys.modules clean
    vila_root = tmp_path / "framework" / "thirdparty" / "VILA" / "llava" / "model"
    vila_root.mkdir(parents=True)
    (vila_root.parent / "__init__.py").write_text("")
    (vila_root / "__init__.py").write_text("")
    (vila_root / "builder.py").write_text("import ctbench_absent_module_s2wrapper\n")
    tiny_vista3d.write_checkout(tmp_path / "framework")
    model = vila.VilaM3(weights=str(weights), repo=str(tmp_path / "framework"), device="cpu")
    with pytest.raises(ModelNotReady, match="imports 'ctbench_absent_module_s2wrapper', which is not installed"):
        model.load()
