"""The six servers whose model classes live in their authors' code: everything up to the model
call (prompts and tokens, published-variant differences, preprocessing shapes, output
post-processing and stop strings), with the model call replaced by a stub."""
from __future__ import annotations

import numpy as np
import pytest

from ctbench.errors import ModelNotReady
from ctbench.model_servers.registry import get_model_class
from ctbench.model_servers.sdk import QuestionItem
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


def test_ctchat_authors_message_is_the_guis():
    """llava/serve/gradio_web_server.py (CT-CHAT @ fec81f5) lines 312-318."""
    from ctbench.model_servers.ct_chat.server import user_message

    assert user_message(QuestionItem("q", " Is there a nodule? "), "authors") == "<image>\n <provided>Is there a nodule? <short_answer>"
    assert user_message(Q, "authors") == "<image>\n <provided>Which lung contains the nodule? <multiple_choice>"


@pytest.mark.parametrize("variant", ["authors", "published"])
def test_merlin_prompt_per_variant(variant):
    from ctbench.model_servers.merlin.server import merlin_prompt

    prompt = merlin_prompt(Q.text, variant)
    if variant == "authors":
        assert prompt == "Which lung contains the nodule?###\n"
    else:
        assert prompt.endswith("Question: Which lung contains the nodule?\nAnswer:")


def test_merlin_authors_decoding_is_the_report_generation_demos():
    torch = pytest.importorskip("torch")
    kwargs = get_model_class("merlin")(variant="authors").decoding_kwargs()
    (stop,) = kwargs.pop("stopping_criteria")
    assert kwargs == {"do_sample": False, "num_beams": 1, "repetition_penalty": 1.2, "max_new_tokens": 128}
    generated = torch.tensor([[5, 48134], [48134, 7]])
    assert stop(generated, None).tolist() == [True, False]  # stops a sequence that ends with 48134
    assert get_model_class("merlin")(variant="published").decoding_kwargs() == {"do_sample": False, "max_new_tokens": 64}


@pytest.mark.parametrize("variant", ["authors", "published"])
def test_vila_prompts_put_the_slice_and_the_overlay_in_order(variant):
    """The turns around the expert; the expert itself is tested in test_vila_m3.py."""
    from ctbench.model_servers.vila_m3 import server as vila

    expert = "The results are <image>. The colors in this image describe red: liver. Use this result to respond to this prompt:\nq"
    if variant == "authors":
        first = vila.authors_prompt(Q.text)
        assert first.count("<image>") == 1 and "<image>This is a CT image.\nWhich lung contains the nodule?" in first
        prompt = vila.authors_expert_prompt(Q.text, "Let me trigger <VISTA3D(everything)>.", expert)
        assert prompt.startswith(first.removesuffix("<|start_header_id|>assistant<|end_header_id|>\n\n"))
        assert prompt.count("<|start_header_id|>user") == 2
    else:
        prompt = vila.published_prompt(Q.text, expert)
        assert prompt.count("<|start_header_id|>user") == 1 and vila.PUBLISHED_SYSTEM in prompt
    assert prompt.count("<image>") == 2 and expert in prompt
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")


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


# --- preprocessing: each server feeds its variant's ctbench.preprocess preset --------------------
@pytest.mark.parametrize("name", ["med3dvlm", "m3d-lamed", "merlin"])
@pytest.mark.parametrize("variant", ["authors", "published"])
def test_server_preprocess_is_the_variant_preset(name, variant):
    from ctbench.preprocess.input_spec import get_spec

    volume = small_volume()
    model = get_model_class(name)(variant=variant)
    spec = get_spec(name, variant)
    out = model.preprocess(volume)
    assert out.shape == spec.target_shape and out.dtype == np.float32
    assert np.array_equal(out, spec.apply(volume))
    assert model.input_spec().to_dict() == spec.to_dict()


def test_published_and_authors_inputs_differ_where_the_spec_says():
    volume = small_volume()
    for name in ("med3dvlm", "m3d-lamed"):
        authors = get_model_class(name)(variant="authors").preprocess(volume)
        published = get_model_class(name)(variant="published").preprocess(volume)
        assert not np.allclose(authors, published)  # windowed vs min-max of raw HU
    merlin_a = get_model_class("merlin")(variant="authors").preprocess(volume)
    merlin_p = get_model_class("merlin")(variant="published").preprocess(volume)
    assert merlin_a.shape == (224, 224, 160) and merlin_p.shape == (160, 224, 224)
    assert np.allclose(merlin_p, merlin_a.transpose(2, 1, 0))  # same numbers, axes in the wrong order


def test_radfm_repeats_the_preset_array_over_three_channels():
    from ctbench.model_servers.radfm.server import three_channels

    hwd = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)
    out = three_channels(hwd)
    assert out.shape == (3, 4, 5, 6) and all(np.array_equal(out[c], hwd) for c in range(3))


@pytest.mark.parametrize("variant", ["authors", "published"])
def test_vila_preprocess_gives_one_rgb_slice(variant):
    model = get_model_class("vila-m3")(variant=variant)
    prepared = model.preprocess(small_volume())
    assert prepared.slice_rgb.ndim == 3 and prepared.slice_rgb.shape[-1] == 3
    assert prepared.slice_rgb.dtype == np.uint8


@pytest.mark.parametrize("name", ["medgemma", "lingshu"])
@pytest.mark.parametrize("variant", ["authors", "published"])
def test_slice_override_pipeline_matches_the_preset(name, variant):
    from ctbench.model_servers.vlm_common.inputs import slice_pipeline
    from ctbench.preprocess.input_spec import get_spec

    spec = get_spec(name, variant)
    volume = small_volume(shape=(40, 24, 20))
    if spec.slice_size is None:  # native size: cheap to compare against the preset itself
        assert np.array_equal(slice_pipeline(spec, spec.num_slices, None)(volume), spec.apply(volume))
    out = slice_pipeline(spec, 4, (16, 16))(volume)
    assert out.shape == (4, 16, 16, 3) and out.dtype == np.uint8


def test_medgemma_published_red_channel_differs_from_authors():
    volume = small_volume(shape=(10, 8, 8))
    options = {"num_slices": "4", "slice_size": "native"}
    authors = get_model_class("medgemma")(variant="authors", **options).preprocess(volume).images
    published = get_model_class("medgemma")(variant="published", **options).preprocess(volume).images
    assert authors.shape == published.shape == (4, 8, 8, 3)
    assert not np.array_equal(np.sort(authors[..., 0], axis=None), np.sort(published[..., 0], axis=None))
