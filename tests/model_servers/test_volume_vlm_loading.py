"""M3D-LaMed, Med3DVLM and RadFM around their authors' code: the authors' VQA prompts, loud
weight loading (a prefixed or mis-named vision tower, parameters left at random init), RadFM's
offline redirections, the tiny tokenizer, and the selftest builders without a checkout. The
selftests against real checkouts run when CTBENCH_M3D_REPO / CTBENCH_RADFM_REPO point at one."""
from __future__ import annotations

import os
import re
import types

import pytest

from ctbench.errors import ModelNotReady
from ctbench.model_servers.registry import get_model_class
from ctbench.model_servers.sdk import QuestionItem

torch = pytest.importorskip("torch")

Q = QuestionItem(question_id="v::0", text=" Which lung contains the nodule? ", options=("left", "right"))


# --- prompts and decoding ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["m3d-lamed", "med3dvlm"])
def test_authors_prompt_follows_the_authors_vqa_data(name):
    model = get_model_class(name)(variant="authors")
    prompt = model.build_prompt(Q)
    assert prompt == "<im_patch>" * 256 + " Which lung contains the nodule? Choices: A. left B. right"
    open_prompt = model.build_prompt(QuestionItem(question_id="v::1", text="Describe the liver."))
    assert open_prompt == "<im_patch>" * 256 + " Describe the liver."
    assert model.settings["do_sample"] is False and model.settings["max_new_tokens"] == 256


@pytest.mark.parametrize("name", ["m3d-lamed", "med3dvlm"])
def test_published_prompt_keeps_the_published_harness(name):
    model = get_model_class(name)(variant="published")
    assert model.build_prompt(Q) == "<im_patch>" * 256 + "Which lung contains the nodule?"
    assert model.settings["do_sample"] is True and model.settings["top_p"] == 0.9


def test_radfm_runs_fp32_for_authors_and_fp16_for_published():
    cls = get_model_class("radfm")
    authors, published = cls(variant="authors"), cls(variant="published")
    for model in (authors, published):
        model.device = lambda: "cuda"  # the dtype a GPU host gets
    assert authors.model_dtype() == torch.float32 and published.model_dtype() == torch.float16


# --- Med3DVLM's vision tower -------------------------------------------------------------------
class Tower(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv3d(1, 2, 3)
        self.scale = torch.nn.Parameter(torch.ones(2))


def test_vision_tower_loads_by_exact_name_and_strictly(tmp_path):
    from ctbench.model_servers.med3dvlm.server import load_vision_tower

    source = Tower()
    torch.nn.init.constant_(source.stem.weight, 0.5)
    torch.save(source.state_dict(), tmp_path / "vision_tower.bin")
    target = Tower()
    load_vision_tower(target, tmp_path / "vision_tower.bin")
    assert torch.equal(target.stem.weight, source.stem.weight)


def test_prefixed_vision_tower_is_not_serving_and_says_prefixed(tmp_path):
    from ctbench.model_servers.med3dvlm.server import load_vision_tower

    state = {f"vision_tower.{k}": v for k, v in Tower().state_dict().items()}
    torch.save(state, tmp_path / "vision_tower.bin")
    with pytest.raises(ModelNotReady, match=r"vision_tower\.bin does not match.*prefix 'vision_tower'"):
        load_vision_tower(Tower(), tmp_path / "vision_tower.bin")


def test_misnamed_vision_tower_parameters_are_named(tmp_path):
    from ctbench.model_servers.med3dvlm.server import load_vision_tower

    state = Tower().state_dict()
    state["gamma"] = state.pop("scale")  # the name before upstream's "fixed model loading issue"
    torch.save(state, tmp_path / "vision_tower.bin")
    with pytest.raises(ModelNotReady, match=r"1 parameter\(s\) missing \(scale\), 1 unexpected \(gamma\)"):
        load_vision_tower(Tower(), tmp_path / "vision_tower.bin")
    with pytest.raises(ModelNotReady, match="is missing"):
        load_vision_tower(Tower(), tmp_path / "absent" / "vision_tower.bin")


def test_med3dvlm_load_left_at_random_init_is_an_error(tmp_path):
    model = get_model_class("med3dvlm")(variant="authors", weights=str(tmp_path))
    wrapper = types.SimpleNamespace(get_model=lambda: types.SimpleNamespace(vision_tower=Tower()))
    with pytest.raises(ModelNotReady, match=r"random init: 1 parameter\(s\) missing .*lm_head\.weight"):
        model.complete_load(wrapper, {"missing_keys": ["lm_head.weight"], "unexpected_keys": []})
    # only tower keys missing: filled from vision_tower.bin, which must then fit exactly
    torch.save(Tower().state_dict(), tmp_path / "vision_tower.bin")
    model.complete_load(wrapper, {"missing_keys": ["model.vision_tower.scale"], "unexpected_keys": []})
    torch.save({"stem.weight": torch.zeros(1)}, tmp_path / "vision_tower.bin")
    with pytest.raises(ModelNotReady, match="does not match the vision tower"):
        model.complete_load(wrapper, {"missing_keys": ["model.vision_tower.scale"], "unexpected_keys": []})


# --- RadFM offline -----------------------------------------------------------------------------
def _tiny_bert(target):
    from transformers import BertConfig, BertModel, BertTokenizer

    target.mkdir(parents=True)
    (target / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "lung"]) + "\n")
    BertTokenizer(vocab_file=str(target / "vocab.txt")).save_pretrained(str(target))
    BertModel(BertConfig(vocab_size=6, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16)).save_pretrained(str(target))


def test_radfm_hub_ids_and_llama_weights_come_from_the_weights_dir(tmp_path, monkeypatch):
    from transformers import AutoModel, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from ctbench.model_servers.radfm.offline import offline_authors_classes

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    multimodality = types.SimpleNamespace(LlamaForCausalLM=LlamaForCausalLM)
    embedding = types.SimpleNamespace(AutoTokenizer=AutoTokenizer, AutoModel=AutoModel)
    language = tmp_path / "Language_files"
    LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                num_attention_heads=2).save_pretrained(str(language))  # a config, no weights
    with offline_authors_classes(multimodality, embedding, tmp_path, torch.float32):
        llama = multimodality.LlamaForCausalLM.from_pretrained(str(language))
        assert isinstance(llama, LlamaForCausalLM) and llama.config.hidden_size == 16
        absent = r"xmcmic/Med-KEBERT by hub id; it must be at .*Med-KEBERT.*models fetch radfm"
        with pytest.raises(ModelNotReady, match=absent):
            embedding.AutoModel.from_pretrained("xmcmic/Med-KEBERT")
        _tiny_bert(tmp_path / "Med-KEBERT")
        bert = embedding.AutoModel.from_pretrained("xmcmic/Med-KEBERT")
        assert bert.config.hidden_size == 8
        assert embedding.AutoTokenizer.from_pretrained("xmcmic/Med-KEBERT").name_or_path == str(tmp_path / "Med-KEBERT")
    assert multimodality.LlamaForCausalLM is LlamaForCausalLM and embedding.AutoModel is AutoModel  # restored


def test_radfm_fetch_gets_med_kebert_into_the_weights_dir():
    from ctbench.model_servers.vlm_common.catalog import CATALOG

    entry = CATALOG["radfm"]
    assert [(s.repo_id, s.subdir) for s in entry.sources][1] == ("xmcmic/Med-KEBERT", "Med-KEBERT")
    assert "Med-KEBERT/config.json" in entry.required


def test_sentencepiece_vocab_has_llamas_32000_base_pieces(tmp_path):
    sentencepiece = pytest.importorskip("sentencepiece")
    import transformers

    from ctbench.model_servers.radfm.server import radfm_prompt, radfm_special_tokens
    from ctbench.model_servers.vlm_common.sentencepiece_vocab import write_sentencepiece

    write_sentencepiece(tmp_path / "tokenizer.model")
    processor = sentencepiece.SentencePieceProcessor(model_file=str(tmp_path / "tokenizer.model"))
    assert processor.get_piece_size() == 32000
    assert (processor.bos_id(), processor.eos_id()) == (1, 2)
    if int(transformers.__version__.split(".")[0]) >= 5:
        pytest.skip("the slow sentencepiece LlamaTokenizer RadFM's stack uses (transformers 4.31) is gone "
                    f"from transformers {transformers.__version__}; the vocabulary itself is checked above")
    from transformers import LlamaTokenizer

    tokenizer = LlamaTokenizer(vocab_file=str(tmp_path / "tokenizer.model"))
    assert len(tokenizer) == 32000
    tokenizer.add_special_tokens({"additional_special_tokens": radfm_special_tokens()[:34]})
    ids = tokenizer(radfm_prompt("Which lung?"))["input_ids"]
    assert ids[0] == 1 and ids[1:4] == [32000, 32002, 32003]  # <s> <image> <image0> <image1>


# --- selftest builders -------------------------------------------------------------------------
@pytest.mark.parametrize("name, env, url", [
    ("radfm", "CTBENCH_RADFM_REPO", "https://github.com/chaoyi-wu/RadFM at commit 9efba84c"),
    ("m3d-lamed", "CTBENCH_M3D_REPO", "https://github.com/BAAI-DCAI/M3D at commit 63e72005"),
    ("med3dvlm", "CTBENCH_MED3DVLM_REPO", "https://github.com/mirthAI/Med3DVLM at commit cbbd6335"),
])
def test_selftest_builder_without_a_checkout_says_what_to_set(name, env, url, tmp_path, monkeypatch):
    from ctbench.model_servers.selftest import _call, tiny_model

    monkeypatch.setenv(env, str(tmp_path / "nowhere"))
    expected = f"no authors' checkout at {tmp_path / 'nowhere'}. Set {env} to a checkout of {url}"
    with pytest.raises(ModelNotReady, match=re.escape(expected)):
        _call(tiny_model(name).builder)(tmp_path / "weights")
    assert not (tmp_path / "weights").exists()


def test_med3dvlm_builder_names_the_python_the_authors_code_needs(tmp_path, monkeypatch):
    import sys

    from ctbench.model_servers.med3dvlm.tiny import authors_checkout

    (tmp_path / "src" / "model" / "llm").mkdir(parents=True)
    (tmp_path / "src" / "model" / "llm" / "qwen.py").write_text("")
    monkeypatch.setenv("CTBENCH_MED3DVLM_REPO", str(tmp_path))
    if sys.version_info >= (3, 12):
        assert authors_checkout() == tmp_path
    else:
        with pytest.raises(ModelNotReady, match=r"needs Python >= 3\.12 \(src/model/vlm_arch\.py\)"):
            authors_checkout()


@pytest.mark.parametrize("name, env", [("m3d-lamed", "CTBENCH_M3D_REPO"), ("med3dvlm", "CTBENCH_MED3DVLM_REPO"),
                                       ("radfm", "CTBENCH_RADFM_REPO")])
def test_selftest_against_the_authors_checkout(name, env, tmp_path):
    if not os.environ.get(env):
        pytest.skip(f"{env} does not point at a checkout of the authors' code")
    from ctbench.model_servers.selftest import run_selftest

    report = run_selftest(name, workdir=tmp_path, load_timeout_s=900)
    assert report.passed, report.to_text()
    assert [a.status for a in report.answers] == ["OK"] * 3
