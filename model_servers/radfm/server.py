"""RadFM (3D ViT + Perceiver + LLaMA-13B): a (1,1,3,512,512,128) volume and 32 image slots.

Loaded as the authors' Quick_demo does: `MultiLLaMAForCausalLM(lang_model_path=Language_files)`
from the pinned checkout (offline: see `offline.py`), then `pytorch_model.bin` with
`load_state_dict`. `authors` fails on any parameter the checkpoint leaves at random init
(dropping only the BERT `position_ids` buffer newer transformers no longer keep) and runs fp32
as Quick_demo; `published` loads with strict=False and fp16 as the published harness did.
Generation is hard-coded upstream (200 new tokens, top_k 50, no sampling flag = greedy).
"""
from __future__ import annotations

import numpy as np

from ctbench.errors import ModelNotReady
from ctbench.model_servers.sdk import QuestionItem
from ctbench.model_servers.vlm_common.authors_code import AuthorsRepo, AuthorsVLM

GREEDY = {"do_sample": False, "top_k": 50, "max_new_tokens": 200}
IMAGE_SLOTS = 32  # image tokens per image (the Perceiver's latents)
MAX_IMAGES = 100
DROPPED_KEY = "embedding_layer.bert_model.embeddings.position_ids"


def radfm_special_tokens() -> list[str]:
    """What Quick_demo's `get_tokenizer` adds: <image>, </image> and <imageN> for 100x32 slots."""
    return ["<image>", "</image>"] + [f"<image{i}>" for i in range(MAX_IMAGES * IMAGE_SLOTS)]


def radfm_prompt(question: str) -> str:
    return "<image>" + "".join(f"<image{i}>" for i in range(IMAGE_SLOTS)) + "</image>" + question.strip()


def three_channels(hwd: np.ndarray) -> np.ndarray:
    """(H, W, D) -> (3, H, W, D): the preset's array repeated over 3 identical channels."""
    return np.ascontiguousarray(np.repeat(np.asarray(hwd, dtype=np.float32)[None], 3, axis=0))


class RadFM(AuthorsVLM):
    weights_version = "RadFM"
    description = "RadFM (3D ViT + Perceiver, LLaMA-13B): volume at 512x512x128, 3 identical channels."
    license = "Not stated on the model card"
    weights = "chaoyi-wu/RadFM"
    gpu_memory_bytes = 60 << 30  # fp32 (`authors`), as Quick_demo; fp16 (`published`) needs about half
    repo = AuthorsRepo("https://github.com/chaoyi-wu/RadFM", "9efba84cced9ffdcbce00d6005f255414ffa8c36",
                       "CTBENCH_RADFM_REPO", "/opt/authors/RadFM", import_root="Quick_demo")
    generation_defaults = {"authors": dict(GREEDY), "published": dict(GREEDY)}

    def load_model(self) -> None:
        import torch
        from transformers import LlamaTokenizer

        from ctbench.model_servers.radfm.offline import offline_authors_classes
        from ctbench.model_servers.vlm_common.weights import require_complete_load

        multimodality = self.import_authors("Model.RadFM.multimodality_model")
        embedding = self.import_authors("Model.RadFM.my_embedding_layer")
        language = str(self.weights_path / "Language_files")
        tokenizer = LlamaTokenizer.from_pretrained(language)
        tokenizer.add_special_tokens({"additional_special_tokens": radfm_special_tokens()})
        tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id = 0, 1, 2
        self.tokenizer = tokenizer
        dtype = self.model_dtype()
        with offline_authors_classes(multimodality, embedding, self.weights_path, dtype):
            model = multimodality.MultiLLaMAForCausalLM(lang_model_path=language)
        checkpoint = self.weights_path / "pytorch_model.bin"
        state = torch.load(checkpoint, map_location="cpu")
        state.pop(DROPPED_KEY, None)
        try:
            info = model.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # a shape mismatch
            raise ModelNotReady(f"radfm: {checkpoint} does not fit the authors' architecture: {exc}") from exc
        if self.harness == "authors":  # `published` hid missing keys (strict=False), as the harness did
            require_complete_load(self.name, checkpoint, {"missing_keys": info.missing_keys,
                                                          "unexpected_keys": info.unexpected_keys})
        self.model = model.to(self.device(), dtype=dtype).eval()

    def model_dtype(self):
        """fp32 as the authors' Quick_demo (`model.to('cuda')`, no cast); fp16 as the published harness."""
        return self.torch_dtype("float32" if self.harness == "authors" else "float16")

    def build_prompt(self, item: QuestionItem) -> str:
        return radfm_prompt(item.text)

    def generate_one(self, prepared: np.ndarray, prompt: str) -> str:
        import torch

        lang_x = self.tokenizer(prompt, max_length=2048, truncation=True, return_tensors="pt")["input_ids"]
        vision_x = torch.from_numpy(three_channels(prepared))[None, None]  # (1, S=1, 3, H, W, D)
        with torch.inference_mode():
            output = self.model.generate(lang_x.to(self.device()), vision_x.to(self.device(), self.model_dtype()))
        text = self.tokenizer.batch_decode(output, skip_special_tokens=True)[0]
        return text
