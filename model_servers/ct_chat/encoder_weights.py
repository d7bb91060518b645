"""CT-CLIP's image encoder (`CTViT`) weights for CT-CHAT: found by exact file name, loaded strictly.

The authors encode volumes with `CTViT.load("./CT_CLIP_encoder/clip_visual_encoder.pth")`
(CT-CHAT @ fec81f5 `llava/serve/encode_script.py`, line 120), a strict `load_state_dict` of the
encoder alone. CT-RATE's `models/CT-CLIP-Related/` also holds whole CT-CLIP models
(`CT-CLIP_v2.pt`, `CT_VocabFine_v2.pt`, `CT_LiPro_v2.pt`) whose encoder sits under
`visual_transformer.` (CT-CLIP @ 7edd2e0 `CT_CLIP/ct_clip/ct_clip.py`, `CTCLIP.visual_transformer`).
So the server reads, in this order, exactly:

  clip_visual_encoder.pth   the encoder's own state dict
  CT-CLIP_v2.pt             the base CT-CLIP model; its `visual_transformer.` entries

Keys under `vgg.` and `discr.` are dropped: CT-CLIP's training builds `CTViT` with its default
`use_vgg_and_gan=True`, so its files carry the perceptual-loss VGG16 and the GAN discriminator,
which encoding never runs and which the server does not build (building them downloads VGG16).
Every other key must match the encoder one to one, in name and shape; anything else (a prefixed
or mis-named file, another architecture) is `ModelNotReady` naming the file and the keys, so the
server stays NOT_SERVING instead of encoding with a random encoder.
"""
from __future__ import annotations

from pathlib import Path

from ctbench.errors import ModelNotReady

ENCODER_DIR = "models/CT-CLIP-Related"
# (file name, prefix of the encoder's keys inside it), in the order they are looked for.
ENCODER_FILES = (("clip_visual_encoder.pth", ""), ("CT-CLIP_v2.pt", "visual_transformer."))
TRAINING_ONLY_PREFIXES = ("vgg.", "discr.")


def encoder_checkpoint(weights: Path) -> tuple[Path, str]:
    """The encoder file under `weights` and the key prefix of the encoder inside it."""
    folder = weights / ENCODER_DIR
    for name, prefix in ENCODER_FILES:
        if (folder / name).is_file():
            return folder / name, prefix
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    raise ModelNotReady(
        f"ct-chat: no CT-CLIP encoder in {folder}: expected {' or '.join(n for n, _ in ENCODER_FILES)}"
        f" (found: {', '.join(present) or 'nothing'}). Other CT-CLIP files (e.g. CT_VocabFine_v2.pt) are "
        "fine-tuned variants, not the encoder CT-CHAT was trained on."
    )


def encoder_state(state: dict, prefix: str) -> dict:
    """The encoder's entries of a checkpoint: those under `prefix`, prefix removed, without the
    training-only VGG and discriminator."""
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return {k: v for k, v in state.items() if not k.startswith(TRAINING_ONLY_PREFIXES)}


def check_keys(source: Path, expected: dict, found: dict) -> None:
    """Raise `ModelNotReady` unless `found` has exactly the names and shapes of `expected`."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(found)
                         if tuple(expected[k].shape) != tuple(getattr(found[k], "shape", ())))
    if not (missing or unexpected or wrong_shape):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} of {len(expected)} encoder parameter(s) missing ({_few(missing)})")
    if wrong_shape:
        parts.append(f"{len(wrong_shape)} with the wrong shape ({_few(wrong_shape)})")
    if unexpected:
        parts.append(f"keys the encoder does not have: {_few(unexpected)} (a prefixed or mis-named checkpoint?)")
    raise ModelNotReady(f"ct-chat: the CT-CLIP encoder in {source} does not fit CTViT: " + "; ".join(parts))


def load_encoder(encoder, weights: Path) -> Path:
    """Load the CT-CLIP encoder weights into `encoder` (a torch module) strictly; returns the file."""
    import torch

    source, prefix = encoder_checkpoint(weights)
    state = torch.load(source, map_location="cpu")
    if not isinstance(state, dict):
        raise ModelNotReady(f"ct-chat: {source} holds a {type(state).__name__}, not a state dict")
    state = encoder_state(state, prefix)
    check_keys(source, encoder.state_dict(), state)
    encoder.load_state_dict(state, strict=True)
    return source


def _few(keys: list[str], shown: int = 3) -> str:
    more = f", ... {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more
