"""The six servers whose model classes live in their authors' code: everything up to the model
call (prompts and tokens, published-variant differences, preprocessing shapes, output
post-processing and stop strings), with the model call replaced by a stub."""
from __future__ import annotations

import numpy as np
import pytest

from ctbench.errors import ModelNotReady
from ctbench.model_servers.registry import get_model_class
from ctbench.model_servers.sdk import QuestionItem
from ctbench.model_servers.vlm_common import inputs
from ctbench.preprocess.volume import Volume

Q = QuestionItem(question_id="v::0", text="  Which lung contains the nodule? ", options=("left", "right"))


def small_volume(shape=(12, 20, 16), spacing=(2.0, 2.0, 3.0)) -> Volume:
    rng = np.random.default_rng(0)
    return Volume(rng.integers(-1024, 1500, size=shape).astype(np.int16), spacing=spacing)


# --- prompts -----------------------------------------------------------------------------------
def test_med3dvlm_and_m3d_prompts_are_image_patches_then_the_question():
    from ctbench.model_servers.m3d_lamed.server import m3d_prompt
    from ctbench.model_servers.med3dvlm.server import med3dvlm_prompt

    for prompt in (med3dvlm_prompt(Q.text), m3d_prompt(Q.text)):
        assert prompt == "<im_patch>" * 256 + "Which lung contains the nodule?"
    assert med3dvlm_prompt("q", 8).count("<im_patch>") == 8


def test_radfm_prompt_has_32_image_slots_inside_image_tags():
    from ctbench.model_servers.radfm.server import radfm_prompt, radfm_special_tokens

    prompt = radfm_prompt(Q.text)
    assert prompt.startswith("<image><image0><image1>")
    assert prompt.count("<image") == 33 and "<image31></image>Which lung" in prompt
    tokens = radfm_special_tokens()
    assert len(tokens) == 2 + 3200 and tokens[-1] == "<image3199>"


@pytest.mark.parametrize(
    "variant, has_image, has_provided",
    [("authors", True, True), ("published", False, False)],
)
def test_ctchat_published_prompt_drops_image_and_provided_tokens(variant, has_image, has_provided):
    model = get_model_class("ct-chat")(variant=variant)
    prompt = model.build_prompt(Q)
    assert ("<image>" in prompt.split("<|start_header_id|>user")[1]) is has_image
    user_turn = prompt.split("<|start_header_id|>user<|end_header_id|>\n\n")[1]
    assert ("<provided>" in user_turn) is has_provided
    assert prompt.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>")
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert "Which lung contains the nodule?" in user_turn
    if variant == "authors":
        assert "<multiple_choice>" in user_turn  # the question has options
    assert model.settings["max_new_tokens"] == (512 if variant == "authors" else 128)


def test_ctchat_short_answer_token_without_options():
    from ctbench.model_servers.ct_chat.server import user_message

    assert user_message(QuestionItem("q", "Is there a nodule?"), "authors") == "<image>\nIs there a nodule? <short_answer> <provided>"


@pytest.mark.parametrize("variant", ["authors", "published"])
def test_merlin_prompt_per_variant(variant):
    from ctbench.model_servers.merlin.server import merlin_prompt

    prompt = merlin_prompt(Q.text, variant)
    if variant == "authors":
        assert prompt == "Which lung contains the nodule?###\n"
    else:
        assert prompt.endswith("Question: Which lung contains the nodule?\nAnswer:")


@pytest.mark.parametrize("variant", ["authors", "published"])
def test_vila_prompt_has_two_images_and_the_expert_legend(variant):
    from ctbench.model_servers.vila_m3.server import TRIGGER, vila_prompt

    prompt = vila_prompt(Q.text, "{#ff0000: liver}", variant)
    assert prompt.count("<image>") == 2
    assert "The colors in this image describe {#ff0000: liver}" in prompt
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert (TRIGGER in prompt) is (variant == "authors")
    assert prompt.count("<|start_header_id|>user") == (2 if variant == "authors" else 1)


def test_vila_overlay_and_legend():
    from ctbench.model_servers.vila_m3.server import legend_text, overlay

    gray = np.zeros((4, 4, 3), np.uint8)
    labels = np.zeros((4, 4), int)
    labels[0, 0] = 1
    out = overlay(gray, labels, {1: (255, 0, 0)}, alpha=1.0)
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[1, 1]) == (0, 0, 0)
    assert legend_text({1: "liver", 2: "spleen"}, {1: (255, 0, 0), 2: (0, 255, 0)}, [1]) == "{#ff0000: liver}"


# --- post-processing and stop strings -----------------------------------------------------------
@pytest.mark.parametrize(
    "name, raw, expected",
    [
        ("ct-chat", "<|begin_of_text|>The right lung.<|eot_id|>more", "The right lung."),
        ("merlin", " Answer: right lung### Findings: ...", "right lung"),
        ("vila-m3", "left<|eot_id|><|start_header_id|>", "left"),
        ("med3dvlm", "  right\n", "right"),
    ],
)
def test_postprocess_cuts_at_stop_strings(name, raw, expected):
    assert get_model_class(name)().postprocess(raw) == expected


@pytest.mark.parametrize("name", ["med3dvlm", "m3d-lamed", "radfm", "ct-chat", "merlin"])
def test_answer_calls_the_model_once_per_question_seeded(name, monkeypatch):
    model = get_model_class(name)()
    calls = []

    def fake_generate(prepared, prompt):
        import torch

        calls.append(prompt)
        return f"answer {torch.randint(0, 10**6, (1,)).item()}"

    monkeypatch.setattr(model, "generate_one", fake_generate)
    items = [QuestionItem(f"v::{i}", f"question {i}", state="tokens", prepared="volume") for i in range(3)]
    first = model.answer(items)
    assert len(calls) == 3 and all(f"question {i}" in calls[i] for i in range(3))
    assert model.answer(items[:1]) == first[:1]  # seeded per question: batching does not change answers


def test_missing_authors_checkout_is_reported_with_commit(tmp_path):
    model = get_model_class("radfm")(repo=str(tmp_path / "none"))
    with pytest.raises(ModelNotReady, match="9efba84cced9ffdcbce00d6005f255414ffa8c36"):
        model.import_authors("Model.RadFM.multimodality_model")


# --- preprocessing --------------------------------------------------------------------------------
def test_published_med3dvlm_input_is_min_max_of_raw_hu_and_authors_is_windowed():
    volume = small_volume()
    published = inputs.min_max(volume.array)
    authors = inputs.clip_scale(volume.array, -1350, 150)
    assert published.min() == 0 and published.max() == 1
    assert np.isclose(authors[volume.array >= 150], 1).all()
    assert not np.allclose(published, authors)


def test_resize_and_crop_shapes():
    array = small_volume().array.astype(np.float32)
    assert inputs.resize_linear(array, (8, 10, 6)).shape == (8, 10, 6)
    padded = inputs.center_crop_or_pad(array, (16, 10, 20), -1.0)
    assert padded.shape == (16, 10, 20) and padded[0, 0, 0] == -1.0


def test_merlin_axis_orders_differ_between_variants(monkeypatch):
    spec_a = inputs.LOCAL["merlin"]["authors"]
    spec_p = inputs.LOCAL["merlin"]["published"]
    assert spec_a.axis_order == "WHD" and spec_p.axis_order == "DHW"
    volume = small_volume(shape=(30, 40, 50), spacing=(3.0, 3.0, 6.0))
    # shrink the crop so the test stays fast; the axis handling is what is checked
    monkeypatch.setattr(inputs, "center_crop_or_pad", lambda a, shape, pad: a)
    authors, published = spec_a.apply(volume), spec_p.apply(volume)
    assert published.shape == authors.shape[::-1]
    assert np.allclose(published, authors.transpose(2, 1, 0))


def test_to_ras_flips_lps_left_right_and_anterior_posterior():
    array = np.zeros((2, 3, 4), np.int16)  # [k, j, i]
    array[0, 0, 0] = 1
    xyz, spacing = inputs.to_ras_xyz(Volume(array, spacing=(1.0, 2.0, 3.0)))
    assert xyz.shape == (4, 3, 2) and spacing == (1.0, 2.0, 3.0)
    assert xyz[3, 2, 0] == 1  # LPS i=0 (rightmost) -> RAS x last; j=0 (anterior) -> y last


def test_vila_published_takes_middle_slice_of_stored_array():
    volume = small_volume(shape=(5, 6, 7))
    stack = inputs.LOCAL["vila-m3"]["published"].apply(volume)
    assert stack.shape == (1, 7, 6)  # (x, y) of slice z = 5 // 2
    expected = inputs.window_to_uint8(volume.array.transpose(2, 1, 0)[:, :, 2], -150, 250)
    assert np.array_equal(stack[0], expected)


def test_slice_rendering_windows_and_published_red_channel():
    volume = small_volume(shape=(10, 8, 8))
    authors, idx = inputs.render_slices(volume.array, 4, inputs.GEMMA_WINDOWS, None)
    published, _ = inputs.render_slices(volume.array, 4, inputs.GEMMA_PUBLISHED_WINDOWS, None)
    assert authors.shape == (4, 8, 8, 3) and list(idx) == [0, 3, 6, 9]
    assert np.array_equal(authors[..., 1:], published[..., 1:])
    assert not np.array_equal(authors[..., 0], published[..., 0])
    resized, _ = inputs.render_slices(volume.array, 20, inputs.GEMMA_WINDOWS, (16, 12))
    assert resized.shape == (10, 16, 12, 3)  # all 10 slices when fewer than asked


def test_window_rejects_empty_range():
    with pytest.raises(ValueError, match="upper must exceed lower"):
        inputs.window_to_uint8(np.zeros(3), 10, 10)
