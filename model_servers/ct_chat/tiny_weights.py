"""A random-weight CT-CHAT weights directory for `bench selftest ct-chat`, built with the
authors' classes from their checkouts (CTBENCH_CTCHAT_REPO, CTBENCH_CTCLIP_REPO) and nothing
downloaded. It has the layout of CT-RATE's `models/` plus `base_llm/`, which the server loads
exactly as it loads the real one:

  models/CT-CLIP-Related/clip_visual_encoder.pth   CT-CLIP's `CTViT` at the authors' sizes
                                                   (the server builds it with those; see server.py)
  base_llm/                                        a one-layer Llama (64 wide) with a Llama-3-style tokenizer
  models/CT-CHAT/llama_3.1_8b/                     LlavaConfig (vocab = base + <pad> + 4 task tokens, the
                                                   fork's `attn_pool+mlp2x_gelu` projector from 512),
                                                   `non_lora_trainables.bin` (that projector) and a LoRA
                                                   adapter made with peft on the fork's
                                                   `LlavaLlamaForCausalLM`
"""
from __future__ import annotations

import sys
from pathlib import Path

from ctbench.model_servers.ct_chat import import_shims
from ctbench.model_servers.ct_chat.encoder_weights import ENCODER_DIR
from ctbench.model_servers.ct_chat.server import CTVIT_ARGS, CTChat
from ctbench.model_servers.vlm_common.authors_code import AuthorsRepo, require_checkout

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
CORPUS = [
    "You are CT-CHAT, an AI assistant specializing in Chest CT imaging. Please provide the CT volume.",
    "Which lung contains the nodule? Is there a pleural effusion? left right upper lower yes no",
    "system user assistant provided image short answer multiple choice",
]
MODEL_DIR = "models/CT-CHAT/llama_3.1_8b"


def _on_path(repo: AuthorsRepo) -> Path:
    root = require_checkout(repo)
    root = root / repo.import_root if repo.import_root else root
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root


def _tokenizer(out: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator(CORPUS, trainer)
    bos = "<|begin_of_text|>"
    raw.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, raw.token_to_id(bos))])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token=bos, eos_token="<|eot_id|>")
    tokenizer.save_pretrained(out)
    return tokenizer


def build_ct_chat_dir(out: str | Path, seed: int = 0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out)
    _on_path(CTChat.clip_repo)
    checkout = _on_path(CTChat.repo)
    import transformer_maskgit

    torch.manual_seed(seed)
    encoder_dir = out / ENCODER_DIR
    encoder_dir.mkdir(parents=True, exist_ok=True)
    torch.save(transformer_maskgit.CTViT(**CTVIT_ARGS, use_vgg_and_gan=False).state_dict(),
               encoder_dir / "clip_visual_encoder.pth")

    base = out / "base_llm"
    tokenizer = _tokenizer(base)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(base)

    import_shims.install(checkout)
    from llava.model.language_model.llava_llama import LlavaConfig, LlavaLlamaForCausalLM
    from peft import LoraConfig, get_peft_model

    llava_config = LlavaConfig(**{**config.to_dict(), "vocab_size": len(tokenizer) + 1 + 4})
    # What the fork's training writes (llava_arch.py initialize_vision_modules and the finetune script).
    llava_config.update({"mm_vision_tower": "openai/clip-vit-large-patch14-336", "mm_hidden_size": 512,
                         "mm_context_size": 512, "mm_projector_type": "attn_pool+mlp2x_gelu",
                         "mm_use_im_start_end": False, "mm_use_im_patch_token": False,
                         "mm_vision_select_layer": -2, "image_aspect_ratio": "pad"})
    model_dir = out / MODEL_DIR
    model_dir.mkdir(parents=True, exist_ok=True)
    llava_config.save_pretrained(model_dir)
    model = LlavaLlamaForCausalLM(LlavaConfig(**{**llava_config.to_dict(), "vocab_size": len(tokenizer) + 1}))
    projector = {f"base_model.model.model.mm_projector.{k}": v
                 for k, v in model.get_model().mm_projector.state_dict().items()}
    torch.save(projector, model_dir / "non_lora_trainables.bin")
    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    for name, param in lora.named_parameters():
        if "lora_B" in name:  # peft starts B at zero; random B makes the merge change the model
            torch.nn.init.normal_(param, std=0.02)
    lora.save_pretrained(model_dir)
    return out
