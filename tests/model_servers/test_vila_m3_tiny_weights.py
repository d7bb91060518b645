"""The parts of `bench selftest vila-m3` that need no VILA checkout: the tiny Llama-3-style
tokenizer (loaded back the way VILA's `build_llm_and_tokenizer` loads it) and the wrap that keeps
VILA's load on a non-CUDA device. The whole builder, with VILA's classes, runs in
`test_selftest_authors_stacks.py` where a VILA venv and checkout are given."""
from __future__ import annotations

import re
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


def test_the_builder_without_a_checkout_says_what_to_set(tmp_path, monkeypatch):
    from ctbench.errors import ModelNotReady
    from ctbench.model_servers.selftest import _call, tiny_model

    monkeypatch.setenv("CTBENCH_VILA_M3_REPO", str(tmp_path / "nowhere"))
    expected = ("set CTBENCH_VILA_M3_REPO to a checkout of https://github.com/Project-MONAI/VLM-Radiology-Agent-Framework "
                f"at commit 9acf57647b6619a923ce76a3f78d48453b444cd9 (nothing at {tmp_path / 'nowhere'}")
    with pytest.raises(ModelNotReady, match=re.escape(expected)):
        _call(tiny_model("vila-m3").builder)(tmp_path / "weights")
    assert not (tmp_path / "weights").exists()


def test_the_builder_names_a_checkout_without_its_vila_submodule(tmp_path, monkeypatch):
    from ctbench.errors import ModelNotReady
    from ctbench.model_servers.vila_m3.tiny_weights import build_vila_m3_dir

    (tmp_path / "framework" / "thirdparty" / "VILA").mkdir(parents=True)  # an uninitialised submodule
    monkeypatch.setenv("CTBENCH_VILA_M3_REPO", str(tmp_path / "framework"))
    with pytest.raises(ModelNotReady, match=r"thirdparty/VILA holds no VILA code.*git submodule update --init thirdparty/VILA"):
        build_vila_m3_dir(tmp_path / "weights")
    assert not (tmp_path / "weights").exists()


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


# --- every part filled from its folder ------------------------------------------------------------
class _Parts:
    """VILA's accessors over three small torch modules (llava_arch.py: get_llm, get_vision_tower
    whose `.vision_tower` is the HF model, get_mm_projector)."""

    def __init__(self):
        import torch

        self.llm = torch.nn.Sequential(torch.nn.Embedding(8, 4), torch.nn.Linear(4, 8))
        self.tower = types.SimpleNamespace(vision_tower=torch.nn.Conv2d(3, 4, 2))
        self.projector = torch.nn.Sequential(torch.nn.LayerNorm(4), torch.nn.Linear(4, 4))

    def get_llm(self):
        return self.llm

    def get_vision_tower(self):
        return self.tower

    def get_mm_projector(self):
        return self.projector


def _save(model: _Parts, root, prefix: str = "", shards: int = 1) -> None:
    from safetensors.torch import save_file

    from ctbench.model_servers.vila_m3.load_check import parts

    for folder, module in parts(model).items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        state = {prefix + k: v.contiguous() for k, v in module.state_dict().items()}
        names = sorted(state)
        for i in range(shards):  # shards as the released llm/ has them (model-0000i-of-0000n)
            part = {k: state[k] for k in names[i::shards]}
            if part:
                save_file(part, str(root / folder / f"model-{i + 1:05d}-of-{shards:05d}.safetensors"))


def test_every_part_found_in_its_folder_passes(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from ctbench.model_servers.vila_m3.load_check import require_parts_loaded

    model = _Parts()
    _save(model, tmp_path, shards=2)
    require_parts_loaded(model, tmp_path)


def test_a_prefixed_checkpoint_names_the_part_left_at_random_init(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    from ctbench.errors import ModelNotReady
    from ctbench.model_servers.vila_m3.load_check import require_parts_loaded

    model = _Parts()
    _save(model, tmp_path)
    (tmp_path / "mm_projector" / "model-00001-of-00001.safetensors").unlink()
    save_file({f"module.{k}": v for k, v in model.projector.state_dict().items()},
              str(tmp_path / "mm_projector" / "model.safetensors"))
    with pytest.raises(ModelNotReady, match=r"vila-m3 \(mm_projector\): loading .*mm_projector would leave parameters at "
                                            r"random init: 4 parameter\(s\) missing .*checkpoint keys nothing uses: module\."):
        require_parts_loaded(model, tmp_path)


def test_a_folder_without_a_checkpoint_is_named(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from ctbench.errors import ModelNotReady
    from ctbench.model_servers.vila_m3.load_check import require_parts_loaded

    model = _Parts()
    _save(model, tmp_path)
    for file in (tmp_path / "vision_tower").iterdir():
        file.unlink()
    with pytest.raises(ModelNotReady, match=r"vision_tower holds no checkpoint"):
        require_parts_loaded(model, tmp_path)


def test_a_bin_checkpoint_is_read_too(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from ctbench.errors import ModelNotReady
    from ctbench.model_servers.vila_m3.load_check import require_parts_loaded

    model = _Parts()
    _save(model, tmp_path)
    for file in (tmp_path / "llm").iterdir():
        file.unlink()
    state = model.llm.state_dict()
    torch.save({k: v for k, v in state.items() if k != "1.bias"}, tmp_path / "llm" / "pytorch_model.bin")
    with pytest.raises(ModelNotReady, match=r"vila-m3 \(llm\).*1 parameter\(s\) missing from the checkpoint \(1\.bias\)"):
        require_parts_loaded(model, tmp_path)
