"""CT-CHAT's load without the authors' checkout: the CT-CLIP encoder found by exact file name and
loaded strictly (a prefixed or mis-named checkpoint keeps the real server NOT_SERVING, saying
why), and the stand-in for the module the LLaVA fork imports but never committed."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

torch = pytest.importorskip("torch")

from ctbench.errors import ModelNotReady
from ctbench.model_servers.ct_chat import encoder_weights
from ctbench.model_servers.ct_chat.server import CTChat
from ctbench.model_servers.vlm_common.loopback import health, serving

# A stand-in CTViT for a fake `transformer_maskgit`: the server builds it with the authors' arguments.
FAKE_MASKGIT = textwrap.dedent("""
    import torch

    class CTViT(torch.nn.Module):
        def __init__(self, *, dim, use_vgg_and_gan=True, **kwargs):
            super().__init__()
            if use_vgg_and_gan:
                raise RuntimeError("built with use_vgg_and_gan=True: torchvision would download VGG16")
            self.to_patch_emb = torch.nn.Linear(4, 3)
            self.enc_spatial_transformer = torch.nn.LayerNorm(3)
""")


class TinyEncoder(torch.nn.Module):
    """The same names and shapes as FAKE_MASKGIT's CTViT."""

    def __init__(self):
        super().__init__()
        self.to_patch_emb = torch.nn.Linear(4, 3)
        self.enc_spatial_transformer = torch.nn.LayerNorm(3)


def encoder_state(prefix: str = "", training_extras: bool = True) -> dict:
    state = {prefix + k: v for k, v in TinyEncoder().state_dict().items()}
    if training_extras:  # what CT-CLIP's training saves beside the encoder (use_vgg_and_gan=True)
        state[prefix + "vgg.features.0.weight"] = torch.zeros(2, 2)
        state[prefix + "discr.to_logits.weight"] = torch.zeros(1)
    return state


def write(weights, name: str, state: dict):
    folder = weights / encoder_weights.ENCODER_DIR
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / name)
    return folder / name


# --- which file, which keys ---------------------------------------------------------------------
def test_the_visual_encoder_file_is_preferred_over_the_fine_tuned_models(tmp_path):
    write(tmp_path, "CT_VocabFine_v2.pt", {"x": torch.zeros(1)})  # sorts first: a glob picked it
    write(tmp_path, "CT-CLIP_v2.pt", encoder_state("visual_transformer."))
    chosen = write(tmp_path, "clip_visual_encoder.pth", encoder_state())
    encoder = TinyEncoder()
    assert encoder_weights.load_encoder(encoder, tmp_path) == chosen
    expected = torch.load(chosen)
    assert torch.equal(encoder.to_patch_emb.weight, expected["to_patch_emb.weight"])


def test_the_whole_ct_clip_model_gives_its_visual_transformer(tmp_path):
    state = encoder_state("visual_transformer.")
    state["text_transformer.embeddings.weight"] = torch.zeros(5, 2)
    write(tmp_path, "CT-CLIP_v2.pt", state)
    encoder = TinyEncoder()
    encoder_weights.load_encoder(encoder, tmp_path)
    assert torch.equal(encoder.enc_spatial_transformer.weight, state["visual_transformer.enc_spatial_transformer.weight"])


@pytest.mark.parametrize(
    "name, state, message",
    [
        ("clip_visual_encoder.pth", encoder_state("module."), r"keys the encoder does not have: module\..*prefixed"),
        ("clip_visual_encoder.pth", {"to_patch_emb.weight": torch.zeros(3, 4)}, r"3 of 4 encoder parameter\(s\) missing"),
        ("clip_visual_encoder.pth", {**encoder_state(), "to_patch_emb.weight": torch.zeros(3, 5)}, r"1 with the wrong shape \(to_patch_emb.weight\)"),
        ("CT-CLIP_v2.pt", encoder_state("image_encoder."), r"4 of 4 encoder parameter\(s\) missing"),
        ("CT_VocabFine_v2.pt", encoder_state(), r"no CT-CLIP encoder in .*expected clip_visual_encoder.pth or CT-CLIP_v2.pt \(found: CT_VocabFine_v2.pt\)"),
    ],
    ids=["prefixed", "partial", "wrong-shape", "whole-model-wrong-prefix", "mis-named"],
)
def test_a_checkpoint_that_does_not_fit_is_refused_naming_the_problem(tmp_path, name, state, message):
    write(tmp_path, name, state)
    encoder = TinyEncoder()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    with pytest.raises(ModelNotReady, match=message):
        encoder_weights.load_encoder(encoder, tmp_path)
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())  # nothing half-loaded


def test_no_encoder_folder_says_what_was_expected(tmp_path):
    with pytest.raises(ModelNotReady, match=r"no CT-CLIP encoder in .*CT-CLIP-Related.*found: nothing"):
        encoder_weights.encoder_checkpoint(tmp_path)


# --- through the real server ----------------------------------------------------------------------
def fake_clip_checkout(tmp_path):
    root = tmp_path / "CT-CLIP" / "transformer_maskgit"
    (root / "transformer_maskgit").mkdir(parents=True)
    (root / "transformer_maskgit" / "__init__.py").write_text(FAKE_MASKGIT)
    return tmp_path / "CT-CLIP"


def test_a_prefixed_encoder_keeps_the_server_not_serving_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # the server puts the fake checkout on sys.path
    monkeypatch.delitem(sys.modules, "transformer_maskgit", raising=False)
    weights = tmp_path / "weights"
    for config in ("models/CT-CHAT/llama_3.1_8b/config.json", "base_llm/config.json"):
        (weights / config).parent.mkdir(parents=True, exist_ok=True)
        (weights / config).write_text("{}")
    write(weights, "clip_visual_encoder.pth", encoder_state("module."))
    model = CTChat(weights=str(weights), clip_repo=str(fake_clip_checkout(tmp_path)), device="cpu")
    with serving(model, None, wait_loaded=False) as (address, server):
        for _ in range(600):  # the load runs on the server's thread
            if server.core.load_error is not None:
                break
            time.sleep(0.05)
        assert health(address) == "NOT_SERVING"
        assert "the CT-CLIP encoder in" in str(server.core.load_error)
        assert "4 of 4 encoder parameter(s) missing" in str(server.core.load_error)
        assert "module.enc_spatial_transformer.weight" in str(server.core.load_error)
    sys.modules.pop("transformer_maskgit", None)


# --- the never-committed module ------------------------------------------------------------------
SHIM_CHECK = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from ctbench.model_servers.ct_chat import import_shims
    from ctbench.model_servers.vlm_common.import_shims import ShimCalled
    checkout = Path(sys.argv[1])
    installed = import_shims.install(checkout)
    sys.path.insert(0, str(checkout))
    from llava.model.multimodal_encoder.builder import build_vision_tower   # the fork's own file
    try:
        build_vision_tower(None)
        called = "no error"
    except ShimCalled as exc:
        called = str(exc)
    except Exception as exc:
        called = type(exc).__name__ + ": " + str(exc)
    print(json.dumps({"installed": installed, "called": called}))
""")
BUILDER = "from .ct_clip import CLIPVisionTower\n\ndef build_vision_tower(cfg, **kwargs):\n    return CLIPVisionTower(cfg, args=cfg)\n"


def fork_checkout(tmp_path, with_module: bool):
    encoder = tmp_path / "CT-CHAT" / "llava" / "model" / "multimodal_encoder"
    encoder.mkdir(parents=True)
    for folder in (encoder.parents[1], encoder.parent, encoder):
        (folder / "__init__.py").write_text("")
    (encoder / "builder.py").write_text(BUILDER)
    if with_module:
        (encoder / "ct_clip.py").write_text("def CLIPVisionTower(*args, **kwargs):\n    return 'real tower'\n")
    return tmp_path / "CT-CHAT"


def run_shim_check(checkout) -> dict:
    out = subprocess.run([sys.executable, "-c", SHIM_CHECK, str(checkout)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_never_committed_ct_clip_module_gets_a_stand_in_that_refuses_to_build(tmp_path):
    report = run_shim_check(fork_checkout(tmp_path, with_module=False))
    assert report["installed"] == ["llava.model.multimodal_encoder.ct_clip"]
    assert "CLIPVisionTower was called, but the CT-CHAT checkout has no llava/model/multimodal_encoder/ct_clip.py" in report["called"]


def test_a_checkout_that_has_the_module_keeps_it(tmp_path):
    report = run_shim_check(fork_checkout(tmp_path, with_module=True))
    assert report == {"installed": [], "called": "no error"}


# --- the tiny builder without the authors' code ---------------------------------------------------
def test_the_tiny_builder_says_which_checkout_to_provide(tmp_path, monkeypatch):
    from ctbench.model_servers import selftest

    monkeypatch.setenv("CTBENCH_CTCLIP_REPO", str(tmp_path / "absent"))
    spec = selftest.TINY_MODELS["ct-chat"]
    monkeypatch.setitem(selftest.TINY_MODELS, "ct-chat", selftest.TinyModel(("torch",), spec.builder, spec.options))
    report = selftest.run_selftest("ct-chat", workdir=tmp_path / "work")
    assert [(s.name, s.ok) for s in report.stages] == [("imports", True), ("build", False)]
    assert ("set CTBENCH_CTCLIP_REPO to a checkout of https://github.com/ibrahimethemhamamci/CT-CLIP at commit "
            "7edd2e009a7820adecb6bc9c49a1d192b2f890ee") in report.stages[1].detail


# --- CTViT's hard-coded CUDA device -----------------------------------------------------------------
HARD_CODED = "import torch\n\ndef grid(n):\n    device = torch.device('cuda')\n    return torch.arange(n, device=device)\n"
DEVICE_CHECK = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from ctbench.model_servers.ct_chat.encoder_device import pin_encoder_device
    from transformer_maskgit import attention, ctvit
    try:
        ctvit.grid(2)
        before = "ran"
    except Exception as exc:
        before = type(exc).__name__
    changed = pin_encoder_device("cpu")
    print(json.dumps({"before": before, "changed": changed, "after": [str(m.grid(3).device) for m in (ctvit, attention)],
                      "cpu_kept": str(ctvit.torch.device("cpu")), "tensor_type": ctvit.torch.Tensor is __import__("torch").Tensor}))
""")


def test_the_encoders_hard_coded_cuda_device_runs_on_the_cpu(tmp_path):
    package = tmp_path / "transformer_maskgit"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("ctvit.py", "attention.py"):
        (package / name).write_text(HARD_CODED)
    out = subprocess.run([sys.executable, "-c", DEVICE_CHECK, str(tmp_path)], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "CUDA_VISIBLE_DEVICES": ""})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["before"] != "ran"  # as the authors wrote it, it needs CUDA
    assert report["changed"] == ["transformer_maskgit.ctvit", "transformer_maskgit.attention"]
    assert report["after"] == ["cpu", "cpu"] and report["cpu_kept"] == "cpu" and report["tensor_type"] is True
