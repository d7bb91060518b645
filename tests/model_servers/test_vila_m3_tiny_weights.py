"""The parts of `bench selftest vila-m3` that need no VILA checkout: the tiny Llama-3-style
tokenizer (loaded back the way VILA's `build_llm_and_tokenizer` loads it) and the wrap that keeps
VILA's load on a non-CUDA device. The whole builder, with VILA's classes, runs in
`test_selftest_authors_stacks.py` where a VILA venv and checkout are given."""
from __future__ import annotations

import types

import pytest

from ctbench.model_servers.vila_m3 import server as vila
from ctbench.model_servers.vila_m3.load_device import device_map_kept


def test_tokenizer_has_llama3_chat_tokens_and_adds_bos_as_llama3(tmp_path):
    pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    from ctbench.model_servers.vila_m3.tiny_weights import BOS, EOS, SPECIALS, llama3_tokenizer

    llama3_tokenizer(tmp_path)
    # VILA (llava/model/language_model/builder.py) loads the LLM's tokenizer like this.
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path, padding_side="right", use_fast=False, legacy=False)
    assert tokenizer.bos_token == BOS and tokenizer.eos_token == EOS
    for special in SPECIALS:
        assert len(tokenizer(special, add_special_tokens=False).input_ids) == 1, special
    prompt = vila.authors_prompt("Which side is the marker on?").split(vila.IMAGE)[0]
    ids = tokenizer(prompt).input_ids
    # The prompt begins with the text "<|begin_of_text|>" and the tokenizer adds BOS too, as the
    # released Llama-3 tokenizer does: VILA's tokenizer_image_token keeps both, for the authors as here.
    bos = tokenizer.convert_tokens_to_ids(BOS)
    assert ids[:2] == [bos, bos]
    header = tokenizer.convert_tokens_to_ids("<|start_header_id|>")
    assert ids[2] == header and ids.count(tokenizer.convert_tokens_to_ids("<|eot_id|>")) == 1
    assert tokenizer.decode(ids, skip_special_tokens=True).startswith("system\n\nYou are a helpful")


def _builder() -> types.ModuleType:
    """A module with VILA's two builder functions as far as the device map goes (builder.py at
    355fda9: a non-CUDA device becomes {"": device}, then a SigLIP tower sets "cuda")."""
    module = types.ModuleType("builder")

    def prepare_config_for_eval(config, kwargs):
        config.model_dtype = str(kwargs.pop("torch_dtype"))
        kwargs["device_map"] = "cuda"

    def load_pretrained_model(model_path, model_name, device="cuda"):
        kwargs = {"device_map": "auto"}
        if device != "cuda":
            kwargs["device_map"] = {"": device}
        kwargs["torch_dtype"] = "torch.float16"
        config = types.SimpleNamespace()
        module.prepare_config_for_eval(config, kwargs)
        return config, kwargs

    module.prepare_config_for_eval = prepare_config_for_eval
    module.load_pretrained_model = load_pretrained_model
    return module


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_a_non_cuda_load_keeps_its_device_map_and_vilas_other_settings(device):
    builder = _builder()
    original = builder.prepare_config_for_eval
    config, kwargs = builder.load_pretrained_model("W", "Llama3-VILA-M3-8B", device=device)
    assert kwargs == {"device_map": "cuda"}  # what VILA does on its own
    with device_map_kept(builder, device) as wrapped:
        config, kwargs = builder.load_pretrained_model("W", "Llama3-VILA-M3-8B", device=device)
    assert wrapped and kwargs == {"device_map": {"": device}} and config.model_dtype == "torch.float16"
    assert builder.prepare_config_for_eval is original  # restored after the load


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_a_cuda_load_is_left_to_vila(device):
    builder = _builder()
    original = builder.prepare_config_for_eval
    with device_map_kept(builder, device) as wrapped:
        assert builder.prepare_config_for_eval is original
        _, kwargs = builder.load_pretrained_model("W", "Llama3-VILA-M3-8B", device=device)
    assert not wrapped and kwargs["device_map"] == "cuda"


def test_the_wrap_is_undone_when_the_load_fails():
    builder = _builder()
    original = builder.prepare_config_for_eval
    with pytest.raises(RuntimeError), device_map_kept(builder, "cpu"):
        raise RuntimeError("load failed")
    assert builder.prepare_config_for_eval is original
