"""Build a tiny AlignScore weights folder with random weights, for the plumbing tests.

Run with the AlignScore venv's python (it needs that venv's torch, transformers and
pytorch-lightning):  VENV/bin/python alignscore_tiny.py OUT_DIR

OUT_DIR gets the layout the worker reads: roberta-base/ (a 2-layer, 32-wide RoBERTa with a
byte-level vocabulary and no merges), AlignScore-base.ckpt (a Lightning checkpoint of AlignScore's
BERTAlignModel around it, seed 0) and nltk_data/tokenizers/punkt_tab/english/ (untrained Punkt
parameters). The scores it gives mean nothing; every file is real.
"""
import json
import os
import sys


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (what a byte-level BPE vocabulary is made of)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def build(out: str) -> None:
    import pytorch_lightning as pl
    import torch
    from transformers import RobertaConfig, RobertaForMaskedLM

    roberta = os.path.join(out, "roberta-base")
    os.makedirs(roberta, exist_ok=True)
    vocab = {tok: i for i, tok in enumerate(["<s>", "<pad>", "</s>", "<unk>"])}
    for ch in bytes_to_unicode().values():
        vocab.setdefault(ch, len(vocab))
    vocab["<mask>"] = len(vocab)
    with open(os.path.join(roberta, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f)
    with open(os.path.join(roberta, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
    with open(os.path.join(roberta, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizer_class": "RobertaTokenizer", "model_max_length": 64}, f)
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=37, max_position_embeddings=70, type_vocab_size=1,
                           pad_token_id=1, bos_token_id=0, eos_token_id=2)
    RobertaForMaskedLM(config).save_pretrained(roberta)

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "evaluation", "alignscore"))
    from worker import stub_spacy  # the worker's stand-in for spaCy, which the venv leaves out

    stub_spacy()
    from alignscore.model import BERTAlignModel

    torch.manual_seed(0)
    model = BERTAlignModel(model=roberta)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": {"model": "roberta-base"},
                "pytorch-lightning_version": pl.__version__, "epoch": 0, "global_step": 0},
               os.path.join(out, "AlignScore-base.ckpt"))

    punkt = os.path.join(out, "nltk_data", "tokenizers", "punkt_tab", "english")
    os.makedirs(punkt, exist_ok=True)
    for name in ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab"):
        open(os.path.join(punkt, name), "w").close()


if __name__ == "__main__":
    build(sys.argv[1])
