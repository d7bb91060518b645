"""MedGemma and Lingshu, real servers over gRPC on loopback, tiny random weights, a phantom CT.

Covers: loading from a weights directory with the authors' classes, slice sampling and
windowing, the chat template with one image per slice, batching of a volume's questions,
greedy generation and decoding, and per-volume prefix reuse answering exactly as re-encoding.
"""
from __future__ import annotations

import pytest

from ctbench.model_servers.registry import get_model_class
from ctbench.model_servers.vlm_common.loopback import TINY_OPTIONS, ask, describe, health, serving

MODELS = ["medgemma", "lingshu"]


def make(name: str, weights, **extra):
    options = {**TINY_OPTIONS, "weights": str(weights[name]), **extra}
    return get_model_class(name)(**options)


@pytest.mark.parametrize("name", MODELS)
def test_serves_phantom_questions_with_reuse_and_batches_them(name, tiny_weights, phantom):
    model = make(name, tiny_weights, max_batch_size="8")
    model.max_wait_ms = 200.0  # let the volume's questions gather into one batch
    with serving(model, phantom["root"]) as (address, _):
        assert health(address) == "SERVING"
        answers = ask(address, phantom["relative"], phantom["volume_id"], phantom["questions"])
    assert len(answers) == len(phantom["questions"])
    assert all(a.status.code == 0 for a in answers.values()), [a.status for a in answers.values()]
    assert any(a.text for a in answers.values())  # random weights may end a row early
    assert max(a.timings.batch_size for a in answers.values()) > 1
    assert {a.model_version for a in answers.values()} == {model.version}


@pytest.mark.parametrize("name", MODELS)
def test_reuse_gives_the_same_greedy_answers_as_reencoding(name, tiny_weights, phantom):
    results = {}
    for reuse in ("true", "false"):
        model = make(name, tiny_weights, reuse=reuse, max_batch_size="8")
        model.max_wait_ms = 200.0
        with serving(model, phantom["root"]) as (address, _):
            answers = ask(address, phantom["relative"], phantom["volume_id"], phantom["questions"])
        results[reuse] = {qid: a.text for qid, a in answers.items()}
    assert results["true"] == results["false"]


@pytest.mark.parametrize("name", MODELS)
def test_batched_answers_equal_one_at_a_time(name, tiny_weights, phantom):
    from ctbench.model_servers.sdk import QuestionItem
    from ctbench.preprocess.volume import load_volume

    model = make(name, tiny_weights)
    model.load()
    prepared = model.preprocess(load_volume(phantom["path"]))
    state = model.encode_volume(prepared)
    items = [QuestionItem(question_id=str(i), text=q, prepared=prepared, state=state, volume_id="v")
             for i, q in enumerate(phantom["questions"][:4])]
    batched = model.answer(items)
    single = [model.answer([item])[0] for item in items]
    assert batched == single


@pytest.mark.parametrize("name", MODELS)
def test_card_reports_licence_variant_generation_and_input(name, tiny_weights, phantom):
    model = make(name, tiny_weights, variant="published")
    with serving(model, phantom["root"]) as (address, _):
        card = describe(address)
    assert card.license and card.license == model.catalog.license
    assert card.input.variant == "published"
    assert card.input.num_slices == 4
    assert card.generation["do_sample"] == "False"
    assert card.generation["variant"] == "published"
    assert card.generation["reuse"] == "True"
    assert "+published+" in card.version


@pytest.mark.parametrize("name", MODELS)
def test_prompt_has_one_image_per_slice_and_the_question_after_them(name, tiny_weights, phantom):
    from ctbench.preprocess.volume import load_volume

    model = make(name, tiny_weights, reuse="false")
    model.load()
    prepared = model.preprocess(load_volume(phantom["path"]))
    assert prepared.images.shape == (4, 32, 32, 3) and prepared.images.dtype.name == "uint8"
    prompt = model.encode_volume(prepared)
    tokenizer = model.processor.tokenizer
    start_token = "<start_of_image>" if name == "medgemma" else "<|vision_start|>"
    ids = prompt.prefix_inputs["input_ids"][0].tolist()
    assert ids.count(tokenizer.convert_tokens_to_ids(start_token)) == 4
    text = tokenizer.decode(ids)
    assert [text.find(f"SLICE {i}") for i in range(1, 5)] == sorted(text.find(f"SLICE {i}") for i in range(1, 5))
    assert text.rstrip().endswith("final answer.")
    tail = tokenizer.decode(model.tail_ids(prompt, "Which lung?"))
    assert tail.startswith("Question: Which lung?")
    assert tail.endswith("model\n" if name == "medgemma" else "assistant\n")


def test_exact_batches_match_one_at_a_time_when_the_prefix_exceeds_a_sliding_window(tmp_path, phantom):
    """Gemma 3's local layers attend over a window of cache positions; with a prefix longer
    than the window, padding shorter questions shifts that window, so `exact_batches=true`
    decodes only equal-length questions together and matches unbatched greedy decoding."""
    from ctbench.model_servers.sdk import QuestionItem
    from ctbench.model_servers.vlm_common.random_weights import build_medgemma_dir
    from ctbench.preprocess.volume import load_volume

    weights = build_medgemma_dir(tmp_path / "medgemma-sw", sliding_window=16)
    model = get_model_class("medgemma")(**{**TINY_OPTIONS, "weights": str(weights), "exact_batches": "true"})
    model.load()
    prepared = model.preprocess(load_volume(phantom["path"]))
    state = model.encode_volume(prepared)
    assert state.prefix_inputs["input_ids"].shape[1] > 16
    texts = ["Which lung?", "Is the lesion in the upper or the lower half of the liver?", "yes or no?"]
    items = [QuestionItem(question_id=str(i), text=t, prepared=prepared, state=state, volume_id="v") for i, t in enumerate(texts)]
    batched = model.answer(items)
    assert batched == [model.answer([item])[0] for item in items]
    model.reuse = False  # and both equal transformers' own generate on the full prompt, one at a time
    assert batched == [model.answer([item])[0] for item in items]
