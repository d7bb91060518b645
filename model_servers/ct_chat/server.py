"""CT-CHAT (LLaVA fork, Llama 3.1 8B) with its CT-CLIP encoder.

Stage 1 encodes the volume with CT-CLIP's `CTViT` (from `transformer_maskgit`, CT-CLIP repo)
to (1,24,24,24,512) tokens, once per volume (`encode_volume`). Stage 2 is the authors' LLaVA
fork: `load_pretrained_model(model_path, model_base, name)`, the `llama3` conversation, and
`tokenizer_image_token`, which turns `<image>` into the image embeddings.

The `published` variant reproduces the published harness's prompt: the question alone, with
neither `<image>` (so the volume is silently dropped) nor `<provided>` (so the system prompt
tells the model to ask for the CT volume), and 128 new tokens. `authors` sends what the authors'
GUI sends for a question about an uploaded volume, `<image>\\n <provided>{question} {task token}`
(`llava/serve/gradio_web_server.py` lines 312-318), greedy with 512 new tokens as their
validation script (`llava/serve/ctchat_validation_llama.py` lines 124-125); README.md.

The CT-CLIP encoder is built as the authors' `encode_script.py` builds it, without the
training-only VGG16 and discriminator (`use_vgg_and_gan=False`: the default downloads VGG16),
and loaded strictly from an exact file name (`encoder_weights.py`). The fork's never-committed
`llava.model.multimodal_encoder.ct_clip` gets a stand-in (`import_shims.py`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ctbench.model_servers.ct_chat import import_shims
from ctbench.model_servers.ct_chat.encoder_device import pin_encoder_device
from ctbench.model_servers.ct_chat.encoder_weights import load_encoder
from ctbench.model_servers.sdk import QuestionItem
from ctbench.model_servers.vlm_common.authors_code import AuthorsRepo, AuthorsVLM

IMAGE_TOKEN = "<image>"
PROVIDED = "<provided>"
SEP = "<|eot_id|>"
# The fork's `conv_llama3` (llava/conversation.py), MPT separator style.
SYSTEM = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n. You are CT-CHAT, an AI assistant specializing in "
    "Chest CT imaging, dedicated to providing accurate and relevant information exclusively related to Chest CT scans and "
    "associated medical topics. You are equipped to answer questions and offer detailed analyses only when the CT "
    "volume/scan/image is provided, indicated by the <provided> token. If this token is not present and users inquire "
    "about specific findings, pathologies, or request descriptions related to a Chest CT, respond by requesting the "
    "necessary data with the phrase: \u201cPlease provide the CT volume.\u201d Once the <provided> token is present in the "
    "question, you are authorized to address questions about pathologies, anatomical or clinical findings, diagnostic "
    "descriptions, report generation, comparisons, or any other questions regarding the image. If it does not appear in "
    "the question, even when special tokens <multiple_choice>, <report_generation>, <long_answer>, and <short_answer> "
    "are given, ignore the question and ask for the CT volume. Always look for the <provided> token, even if there are "
    "special tokens. If there is a <provided> token in any question (including new and previous ones), never ask for the "
    "CT volume again and answer the question. You can ignore the <provided> token check and answer the question directly "
    "if and only if the question is about general medical knowledge, not about the provided CT volume (such as typical "
    "findings on a Chest CT or management of the patient). For example, \u201cWhat are the typical imaging findings of acute "
    "respiratory distress syndrome (ARDS) on a chest CT?\u201d is a general question not specific. If user asks a CT specific "
    "question after non-spesific question, look for the <provided> token as well even if the special tokens are given. It "
    "is crucial to avoid discussing topics outside of Chest CT imaging and directly related medical information, ensuring "
    "that all responses are clear, concise, and focused on the provided Chest CT data for the highest level of accuracy "
    "and relevance. If the user greets you with something like \u201chello,\u201d respond appropriately."
)
USER = "<|start_header_id|>user<|end_header_id|>\n\n"
ASSISTANT = "<|start_header_id|>assistant<|end_header_id|>\n\n"


# CT-CHAT @ fec81f5 llava/serve/encode_script.py lines 108-118.
CTVIT_ARGS = dict(dim=512, codebook_size=8192, image_size=480, patch_size=20, temporal_patch_size=10,
                  spatial_depth=4, temporal_depth=4, dim_head=32, heads=8)


def task_token(item: QuestionItem) -> str:
    return "<multiple_choice>" if item.options else "<short_answer>"


def user_message(item: QuestionItem, variant: str) -> str:
    if variant == "published":
        return item.text.strip()  # neither <image> nor <provided>: the volume never reaches the model
    return f"{IMAGE_TOKEN}\n {PROVIDED}{item.text.strip()} {task_token(item)}"


def ctchat_prompt(message: str) -> str:
    """`conv_llama3.get_prompt()` after appending (user, message) and (assistant, None)."""
    return SYSTEM + SEP + USER + message + SEP + ASSISTANT


class CTChat(AuthorsVLM):
    weights_version = "CT-CHAT-llama3.1-8b"
    description = "CT-CHAT (LLaVA fork, Llama 3.1 8B) on CT-CLIP CTViT tokens (24x24x24x512 -> 256 LLM tokens)."
    license = "CC-BY-NC-SA 4.0 (non-commercial) + Llama 3.1 Community Licence"
    weights = "ibrahimhamamci/CT-RATE (dataset) models/"
    gpu_memory_bytes = 24 << 30
    repo = AuthorsRepo("https://github.com/ibrahimethemhamamci/CT-CHAT", "fec81f5c75816f83ee6d1ee3709ef56ec9fbc985",
                       "CTBENCH_CTCHAT_REPO", "/opt/authors/CT-CHAT")
    clip_repo = AuthorsRepo("https://github.com/ibrahimethemhamamci/CT-CLIP", "7edd2e009a7820adecb6bc9c49a1d192b2f890ee",
                            "CTBENCH_CTCLIP_REPO", "/opt/authors/CT-CLIP", import_root="transformer_maskgit")
    stop_strings = (SEP,)
    generation_defaults = {
        "authors": {"do_sample": False, "temperature": 0.0, "max_new_tokens": 512, "use_cache": True},
        "published": {"do_sample": False, "temperature": 0.0, "max_new_tokens": 128, "use_cache": True},
    }
    extra_options = ("repo", "clip_repo")

    def load_model(self) -> None:
        maskgit = self.import_authors("transformer_maskgit", self.clip_repo, option="clip_repo")
        encoder = maskgit.CTViT(**CTVIT_ARGS, use_vgg_and_gan=False)
        load_encoder(encoder, self.weights_path)
        pin_encoder_device(self.device())
        self.encoder = encoder.to(self.device()).eval()
        import_shims.install(self.checkout())
        builder = self.import_authors("llava.model.builder")
        self.mm_utils = self.import_authors("llava.mm_utils")
        self.constants = self.import_authors("llava.constants")
        model_path = str(self.weights_path / "models/CT-CHAT/llama_3.1_8b")
        self.tokenizer, self.model, _, _ = builder.load_pretrained_model(
            model_path, str(self.weights_path / "base_llm"), "llava_lora_llama3", device=self.device())

    def encode_volume(self, prepared: np.ndarray) -> Any:
        """CTViT tokens (1, 24, 24, 24, 512) for the volume, computed once and shared."""
        import torch

        volume = torch.from_numpy(np.ascontiguousarray(prepared))[None, None].to(self.device())
        with torch.inference_mode():
            return self.encoder(volume, return_encoded_tokens=True).half()

    def build_prompt(self, item: QuestionItem) -> str:
        return ctchat_prompt(user_message(item, self.harness))

    def answer(self, batch: list[QuestionItem]) -> list[str | Exception]:
        # The tokens come from encode_volume (item.state), not the raw volume.
        results: list[str | Exception] = []
        for item in batch:
            self.seed_everything()
            results.append(self.postprocess(self.generate_one(item.state, self.build_prompt(item))))
        return results

    def generate_one(self, tokens, prompt: str) -> str:
        import torch

        input_ids = self.mm_utils.tokenizer_image_token(prompt, self.tokenizer, self.constants.IMAGE_TOKEN_INDEX,
                                                        return_tensors="pt").unsqueeze(0).to(self.model.device)
        with torch.inference_mode():
            output = self.model.generate(input_ids, images=tokens, image_sizes=[tokens.numel()], do_sample=False,
                                         temperature=0.0, max_new_tokens=self.settings["max_new_tokens"], use_cache=True)
        return self.tokenizer.decode(output[0])

    def postprocess(self, text: str) -> str:
        # decode() kept special tokens (as upstream); drop the header markup before cutting.
        text = text.replace("<|begin_of_text|>", "").replace(ASSISTANT, "")
        return super().postprocess(text)
