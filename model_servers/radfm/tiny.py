"""A random-weight RadFM weights directory for `bench selftest radfm`, built offline.

`MultiLLaMAForCausalLM` comes from the authors' checkout (the path the server uses:
`CTBENCH_RADFM_REPO`, else the image's /opt/authors/RadFM). Its vision side (3D ViT,
Perceiver, decoder) has the authors' fixed sizes; the language model is shrunk through
`Language_files/config.json` (one layer, but the hidden size of 5120 and the 32000-token
vocabulary the authors' embedding layer hard-codes), with a 32000-piece SentencePiece
tokenizer made from a few words, and a tiny BERT stands in `Med-KEBERT/`. The layout is the
one `bench models fetch radfm` produces. Nothing is downloaded.
"""
from __future__ import annotations

import os
from pathlib import Path

from ctbench.errors import ModelNotReady

VOCAB = 32000  # the authors' MyEmbedding(num_embeddings=32000) and voc_size
HIDDEN = 5120  # the authors' MyEmbedding(embedding_dim=5120) and hidden_dim


def authors_checkout() -> Path:
    """The RadFM checkout the server imports, or a ModelNotReady saying how to provide it."""
    from ctbench.model_servers.radfm.server import RadFM

    repo = RadFM.repo
    path = Path(os.environ.get(repo.env_var) or repo.default_path)
    if not (path / repo.import_root / "Model" / "RadFM" / "multimodality_model.py").is_file():
        raise ModelNotReady(
            f"radfm selftest: no authors' checkout at {path}. Set {repo.env_var} to a checkout of "
            f"{repo.url} at commit {repo.commit}."
        )
    return path


def _language_files(target: Path) -> None:
    from transformers import LlamaConfig, LlamaTokenizer

    from ctbench.model_servers.vlm_common.sentencepiece_vocab import write_sentencepiece

    target.mkdir(parents=True, exist_ok=True)
    write_sentencepiece(target / "tokenizer.model")
    LlamaTokenizer(vocab_file=str(target / "tokenizer.model")).save_pretrained(str(target))
    LlamaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=40, num_key_value_heads=1, max_position_embeddings=2048,
                tie_word_embeddings=True, pad_token_id=0, bos_token_id=1, eos_token_id=2).save_pretrained(str(target))


def _med_kebert(target: Path) -> None:
    from transformers import BertConfig, BertModel, BertTokenizer

    from ctbench.model_servers.vlm_common.sentencepiece_vocab import WORDS

    target.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    (target / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizer(vocab_file=str(target / "vocab.txt")).save_pretrained(str(target))
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(str(target), safe_serialization=False)


def build_radfm_dir(out_dir: Path) -> Path:
    """Write the tiny weights directory under `out_dir` and return it."""
    import importlib
    import sys

    import torch

    from ctbench.model_servers.radfm.offline import MED_KEBERT_DIR, offline_authors_classes

    root = authors_checkout() / "Quick_demo"
    out_dir = Path(out_dir)
    _language_files(out_dir / "Language_files")
    _med_kebert(out_dir / MED_KEBERT_DIR)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    multimodality = importlib.import_module("Model.RadFM.multimodality_model")
    embedding = importlib.import_module("Model.RadFM.my_embedding_layer")
    torch.manual_seed(0)
    with offline_authors_classes(multimodality, embedding, out_dir, torch.float32):
        model = multimodality.MultiLLaMAForCausalLM(lang_model_path=str(out_dir / "Language_files"))
    torch.save(model.state_dict(), out_dir / "pytorch_model.bin")
    return out_dir
