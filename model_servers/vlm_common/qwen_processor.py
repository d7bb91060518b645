"""Loading the Qwen2.5-VL processor where torchvision is missing (the CPU CI).

transformers 5.x builds Qwen2.5-VL's video processor on torchvision and refuses to construct the
processor without it. Slices are images, never video, so without torchvision this builds the
same processor minus its video half: the same tokenizer, image processor (PIL backend) and
chat template from the weights directory. With torchvision installed (every GPU image), the
stock `AutoProcessor` is used.
"""
from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

log = logging.getLogger("ctbench.server")


def _image_only_class():
    from transformers import Qwen2_5_VLProcessor

    class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
        @classmethod
        def get_attributes(cls):
            return ["image_processor", "tokenizer"]

    return ImageOnlyQwen2_5_VLProcessor


def load_qwen_processor(path: str | Path):
    from transformers import AutoProcessor

    if importlib.util.find_spec("torchvision") is not None:
        return AutoProcessor.from_pretrained(str(path), use_fast=True)
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    log.warning("torchvision is not installed: using Qwen2.5-VL's processor without its video half")
    path = Path(path)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(str(path))
    template_file = path / "chat_template.jinja"
    template = template_file.read_text() if template_file.is_file() else getattr(tokenizer, "chat_template", None)
    if template is None and (path / "chat_template.json").is_file():
        template = json.loads((path / "chat_template.json").read_text())["chat_template"]
    return _image_only_class()(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)


def save_qwen_processor(out: str | Path, image_processor, tokenizer, chat_template: str) -> None:
    """Write the processor files the way a hub snapshot has them (`AutoProcessor` can load them)."""
    out = Path(out)
    tokenizer.save_pretrained(str(out))
    image_processor.save_pretrained(str(out))
    (out / "chat_template.jinja").write_text(chat_template)
    config_file = out / "preprocessor_config.json"
    config = json.loads(config_file.read_text())
    config["processor_class"] = "Qwen2_5_VLProcessor"
    config_file.write_text(json.dumps(config, indent=2))
