"""A random-weight Merlin weights directory for `bench selftest merlin`, built with merlin-vlm's
own classes and nothing downloaded.

The checkpoint is the `state_dict()` of merlin-vlm's `Clip3DForTextGeneration`, built the way
the server builds it (`_offline_builders`): the full I3D ResNet-152 image encoder (its depth and
widths are fixed in `ModifiedImageEncoder`), the `Adapter(2048, 4096)` and RadLLaMA with its
LoRA (r=512). Only RadLLaMA is shrunk, within what the fixed adapter allows: a one-layer Llama
of hidden size 4096 (the adapter's output) with 2 heads of 64, an MLP of 64 and a small
byte-level BPE vocabulary, written to `RadLLaMA-7b/` with its tokenizer. The server then loads
that directory exactly as it loads the real one (strict `load_state_dict`).
"""
from __future__ import annotations

from pathlib import Path

from ctbench.model_servers.merlin.server import CHECKPOINT, _offline_builders

CORPUS = [
    "Generate a radiology report for liver###\n",
    "Which lung contains the nodule? Is the lesion in the left or right kidney?###\n",
    "FINDINGS: The liver is normal in size. No focal lesion. The spleen is unremarkable.",
    "left right upper lower anterior posterior superior inferior medial lateral yes no",
]
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]


def _tokenizer(out: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator(CORPUS, trainer)
    # Like LLaMA's tokenizer, a BOS in front: merlin-vlm drops the first id of every prompt.
    raw.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", raw.token_to_id("<s>"))])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                        pad_token="<pad>")
    tokenizer.save_pretrained(out)
    return tokenizer


def build_tiny_radllama(out: Path, seed: int = 0) -> Path:
    """A one-layer, 4096-wide Llama with its tokenizer: what merlin-vlm's adapter feeds."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(out)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=4096, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, head_dim=64, max_position_embeddings=1024,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    # Untied head: a tied random one mostly repeats the prompt's last token, `###\n`, which the
    # server's stop string then cuts to an empty answer.
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(out)
    return out


def build_merlin_dir(out: str | Path, seed: int = 0) -> Path:
    """The weights directory the server reads: CHECKPOINT and RadLLaMA-7b/."""
    import merlin.models.radiology_report_generation as report_module
    import torch

    out = Path(out)
    radllama = build_tiny_radllama(out / "RadLLaMA-7b", seed)
    torch.manual_seed(seed)
    with _offline_builders(report_module, radllama):
        model = report_module.Clip3DForTextGeneration()
    torch.save(model.state_dict(), out / CHECKPOINT)
    return out
