"""Random-weight MedGemma and Lingshu weights directories, built offline from configs.

Used by the CI tests (`size="tiny"`: a few layers, 32x32 images, a byte-level BPE tokenizer
trained on a few sentences) and by the GPU benchmark (`size="full"`: the published
architectures' dimensions, MedGemma-4B / Lingshu-7B, same small tokenizer; only the token ids
of the special tokens matter for speed). Nothing is downloaded. The directory looks like a hub
snapshot: config, safetensors, tokenizer, processor and chat template, loadable with
`AutoProcessor` / `from_pretrained`.
"""
from __future__ import annotations

from pathlib import Path

CORPUS = [
    "You are an instructor teaching medical students. You are analyzing a contiguous block of CT slices.",
    "Please review the slices provided below carefully. SLICE 1 SLICE 2 SLICE 3",
    "Based on the visual evidence in the slices provided above, answer the question below.",
    "Provide concise reasoning and conclude with a final answer. Question: Which lung contains the nodule?",
    "left right upper lower anterior posterior medial lateral kidney liver spleen cyst lesion yes no",
]

GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] | trim }}{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<start_of_image>{% elif item['type'] == 'text' %}{{ item['text'] | trim }}{% endif %}"
    "{% endfor %}{% endif %}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
QWEN_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
                  "<end_of_image>", "<image_soft_token>"]
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>"]


def _bpe(specials: list[str], vocab_size: int = 420):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(CORPUS, trainer)
    return tokenizer


def build_medgemma_dir(out: str | Path, size: str = "tiny", seed: int = 0, image_size: int = 32,
                       sliding_window: int | None = None) -> Path:
    """A MedGemma-shaped weights directory (Gemma3ForConditionalGeneration + Gemma3Processor)."""
    import torch
    from transformers import Gemma3ForConditionalGeneration, Gemma3Processor
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    out = Path(out)
    tokenizer, config, image_size, mm_tokens = medgemma_parts(size, image_size)
    if sliding_window is not None:
        config.text_config.sliding_window = sliding_window
    image_processor = Gemma3ImageProcessorPil(size={"height": image_size, "width": image_size}, do_pan_and_scan=False,
                                              image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = Gemma3Processor(image_processor=image_processor, tokenizer=tokenizer, chat_template=GEMMA_TEMPLATE,
                                image_seq_length=mm_tokens)
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(config)
    if size == "tiny":
        _spread_logits(model)
    model.generation_config.eos_token_id = config.eos_token_id
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def medgemma_parts(size: str, image_size: int = 32):
    """(tokenizer, Gemma3Config, image size, image tokens per image) for `size` tiny or full."""
    from transformers import Gemma3Config, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_bpe(GEMMA_SPECIALS), bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        extra_special_tokens={"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"},
    )
    ids = {t: _token_id(tokenizer, t) for t in GEMMA_SPECIALS}
    if size == "tiny":
        text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                    head_dim=16, vocab_size=len(tokenizer), sliding_window=4096, max_position_embeddings=8192,
                    layer_types=["sliding_attention", "full_attention"])
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                      image_size=image_size, patch_size=8, vision_use_head=False)
        mm_tokens = 4
    elif size == "full":  # google/medgemma-1.5-4b-it's config.json dimensions
        text = dict(hidden_size=2560, intermediate_size=10240, num_hidden_layers=34, num_attention_heads=8,
                    num_key_value_heads=4, head_dim=256, vocab_size=262208, sliding_window=1024,
                    max_position_embeddings=131072, query_pre_attn_scalar=256,
                    rope_parameters={"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
                                     "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}})
        vision = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                      image_size=896, patch_size=14, vision_use_head=False)
        mm_tokens = 256
        image_size = 896
    else:
        raise ValueError(f"size must be 'tiny' or 'full', got {size!r}")
    text.update(pad_token_id=ids["<pad>"], bos_token_id=ids["<bos>"], eos_token_id=ids["<eos>"])
    # The common token ids go to PreTrainedConfig's **kwargs, which the dataclass-typed signature omits.
    config = Gemma3Config(  # type: ignore[call-arg]
        text_config=text, vision_config=vision, mm_tokens_per_image=mm_tokens,
        boi_token_index=ids["<start_of_image>"], eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"], pad_token_id=ids["<pad>"], bos_token_id=ids["<bos>"],
        eos_token_id=[ids["<eos>"], ids["<end_of_turn>"]],
    )
    return tokenizer, config, image_size, mm_tokens


def build_lingshu_dir(out: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """A Lingshu-shaped weights directory (Qwen2_5_VLForConditionalGeneration + Qwen2_5_VLProcessor)."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from ctbench.model_servers.vlm_common.qwen_processor import save_qwen_processor

    out = Path(out)
    tokenizer, config, pixels = lingshu_parts(size)
    image_processor = Qwen2VLImageProcessorPil(patch_size=14, merge_size=2, temporal_patch_size=2, **pixels)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    if size == "tiny":
        _spread_logits(model)
    model.generation_config.eos_token_id = [config.eos_token_id]
    model.save_pretrained(out)
    save_qwen_processor(out, image_processor, tokenizer, QWEN_TEMPLATE)
    return out


def lingshu_parts(size: str):
    """(tokenizer, Qwen2_5_VLConfig, image-processor pixel bounds) for `size` tiny or full."""
    from transformers import PreTrainedTokenizerFast, Qwen2_5_VLConfig

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=_bpe(QWEN_SPECIALS), eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = {t: _token_id(tokenizer, t) for t in QWEN_SPECIALS}
    if size == "tiny":
        text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                    vocab_size=len(tokenizer), max_position_embeddings=8192,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]})
        vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2, window_size=56, fullatt_block_indexes=[0])
        pixels = dict(min_pixels=28 * 28, max_pixels=56 * 56)
    elif size == "full":  # Qwen2.5-VL-7B / Lingshu-7B config.json dimensions
        text = dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                    num_key_value_heads=4, vocab_size=152064, max_position_embeddings=128000,
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]})
        vision = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31])
        pixels = dict(min_pixels=56 * 56, max_pixels=28 * 28 * 1280)
    else:
        raise ValueError(f"size must be 'tiny' or 'full', got {size!r}")
    text.update(pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"])
    # The common token ids go to PreTrainedConfig's **kwargs, which the dataclass-typed signature omits.
    config = Qwen2_5_VLConfig(  # type: ignore[call-arg]
        text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
    )
    return tokenizer, config, pixels


def _token_id(tokenizer, token: str) -> int:
    """The id of one token (`convert_tokens_to_ids` returns a list only when given a list)."""
    found = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(found, int):
        raise TypeError(f"{token!r}: expected one token id, got {found!r}")
    return found


def _spread_logits(model, scale: float = 8.0) -> None:
    """Widen a tiny random model's output projection so greedy choices are not near-ties
    (near-ties would let float rounding, not the code, decide token-for-token comparisons)."""
    import torch

    with torch.no_grad():
        head = model.get_output_embeddings()
        if head is not None and head.weight is not model.get_input_embeddings().weight:
            head.weight.mul_(scale)
        else:
            model.get_input_embeddings().weight.mul_(scale)
