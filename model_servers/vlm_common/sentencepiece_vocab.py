"""A SentencePiece model of any vocabulary size, written without a training corpus.

The tiny selftest models whose authors' code uses a slow LLaMA tokenizer (RadFM, M3D-LaMed)
need a `tokenizer.model`; RadFM also needs LLaMA's exact 32000 base pieces, because its
embedding layer hard-codes where the image tokens start.
"""
from __future__ import annotations

from pathlib import Path

WORDS = ["the", "a", "is", "in", "of", "and", "left", "right", "upper", "lower", "lobe", "lung", "liver", "kidney", "spleen", "cyst", "nodule", "lesion", "yes", "no", "which", "where", "what", "organ", "contains", "slice", "image", "axial", "ct", "scan"]


def write_sentencepiece(path: Path, vocab_size: int = 32000) -> None:
    """A unigram SentencePiece model with exactly `vocab_size` pieces (LLaMA's layout: <unk>,
    <s>, </s>, 256 byte-fallback pieces, then words) and no training corpus."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    # sentencepiece_model_pb2 builds its message classes at import time; mypy sees none of them.
    model = pb.ModelProto()  # type: ignore[attr-defined]
    model.trainer_spec.model_type = pb.TrainerSpec.UNIGRAM  # type: ignore[attr-defined]
    model.trainer_spec.vocab_size = vocab_size
    model.trainer_spec.byte_fallback = True
    spec = model.trainer_spec
    spec.unk_id, spec.bos_id, spec.eos_id, spec.pad_id = 0, 1, 2, -1
    model.normalizer_spec.name = "identity"
    model.normalizer_spec.add_dummy_prefix = True
    model.normalizer_spec.escape_whitespaces = True
    Piece = pb.ModelProto.SentencePiece  # type: ignore[attr-defined]
    pieces = [("<unk>", 0.0, Piece.UNKNOWN), ("<s>", 0.0, Piece.CONTROL), ("</s>", 0.0, Piece.CONTROL)]
    pieces += [(f"<0x{b:02X}>", 0.0, Piece.BYTE) for b in range(256)]
    normal = ["\u2581" + w for w in WORDS] + ["\u2581"] + [chr(c) for c in range(33, 127)]
    normal += [f"\u2581w{i}" for i in range(vocab_size - len(pieces) - len(normal))]
    pieces += [(text, -float(i + 1), Piece.NORMAL) for i, text in enumerate(normal)]
    for text, score, kind in pieces:
        piece = model.pieces.add()
        piece.piece, piece.score, piece.type = text, score, kind
    path.write_bytes(model.SerializeToString())
