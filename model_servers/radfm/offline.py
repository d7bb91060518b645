"""Loading the authors' RadFM classes offline, from the weights directory alone.

At the pinned commit the authors' code reaches outside the weights directory twice while it
builds `MultiLLaMAForCausalLM`, and both are redirected here, never by editing the checkout:

* `LlamaForCausalLM.from_pretrained(Language_files)` (`Model/RadFM/multimodality_model.py`)
  wants LLaMA-13B weights in `Language_files/`, which the RadFM release does not ship
  (it holds the tokenizer and config). Every LLaMA parameter is in RadFM's own
  `pytorch_model.bin`, so the language model is built from `Language_files/config.json`
  alone and filled by the strict load of that checkpoint.
* `AutoTokenizer/AutoModel.from_pretrained("xmcmic/Med-KEBERT")`
  (`Model/RadFM/my_embedding_layer.py`) is a hub id: it is served from `Med-KEBERT/` in the
  weights directory (`bench models fetch radfm` puts it there). Its weights are also
  overwritten by the checkpoint; the tokenizer and config are what matter.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from ctbench.errors import ModelNotReady

MED_KEBERT_ID = "xmcmic/Med-KEBERT"
MED_KEBERT_DIR = "Med-KEBERT"


def _hub_redirect(loader, weights: Path):
    """`loader` (AutoTokenizer or AutoModel) with `xmcmic/Med-KEBERT` read from weights/Med-KEBERT."""

    class Redirected:
        @staticmethod
        def from_pretrained(name, *args, **kwargs):
            if name == MED_KEBERT_ID:
                local = weights / MED_KEBERT_DIR
                if not (local / "config.json").is_file():
                    raise ModelNotReady(
                        f"radfm: the authors' code loads {MED_KEBERT_ID} by hub id; it must be at {local} "
                        f"(`bench models fetch radfm --weights-dir DIR` puts it there)"
                    )
                name = str(local)
            return loader.from_pretrained(name, *args, **kwargs)

    return Redirected


def _config_only(llama_class):
    """`LlamaForCausalLM` whose `from_pretrained(path)` builds from `path/config.json` only."""

    class ConfigOnly:
        @staticmethod
        def from_pretrained(path, *args, **kwargs):
            from transformers import LlamaConfig

            return llama_class(LlamaConfig.from_pretrained(path))

    return ConfigOnly


@contextmanager
def offline_authors_classes(multimodality: ModuleType, embedding: ModuleType, weights: Path, dtype):
    """While active, the two modules' hub and weight look-ups read the weights directory only,
    and new parameters are created in `dtype` (a 13B model built in fp32 first would need twice
    the memory)."""
    import torch

    saved = (multimodality.LlamaForCausalLM, embedding.AutoTokenizer, embedding.AutoModel)
    previous = torch.get_default_dtype()
    multimodality.LlamaForCausalLM = _config_only(saved[0])
    embedding.AutoTokenizer = _hub_redirect(saved[1], weights)
    embedding.AutoModel = _hub_redirect(saved[2], weights)
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
        multimodality.LlamaForCausalLM, embedding.AutoTokenizer, embedding.AutoModel = saved
