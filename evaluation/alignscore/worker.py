"""The AlignScore worker: runs inside AlignScore's own venv and speaks JSON lines on stdin/stdout.

This file is the one definition of the interface; `bench score` imports its constants, and the
venv's python runs it as a script. It imports only the standard library at module level, so
ctbench can read PROTOCOL_VERSION without torch, and the venv needs no ctbench.

Protocol (version 1), one JSON object per line:

    worker -> {"type": "hello", "protocol": 1, "model": "AlignScore-base", "mode": "nli_sp",
               "versions": {"alignscore": ..., "torch": ..., "transformers": ...}}
    bench  -> {"type": "score", "batch": 7, "items": [{"id": "a1", "context": REF, "claim": PRED}, ...]}
    worker -> {"type": "scores", "batch": 7, "scores": [{"id": "a1", "score": 0.83}, ...]}
    bench  -> {"type": "bye"}                      (or end of stdin): the worker exits 0

An error is {"type": "error", "code": CODE, "message": ..., "batch": N or null}; codes are in
ERROR_CODES. A start-up error (weights or dependencies missing) is sent instead of the hello and
the worker exits 2; a bad request gets an error for that batch and the worker keeps serving.
A score is a float in [0, 1], or null where AlignScore gives none (a claim with no sentence).

Library output (progress bars, warnings) goes to stderr: the worker moves fd 1 to stderr at start
and writes the protocol to a private copy of the original stdout.

    python worker.py --weights DIR [--model base|large] [--device cpu] [--batch-size 32]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import types

PROTOCOL_VERSION = 1
MODE = "nli_sp"  # AlignScore's recommended evaluation mode (sentence-split NLI head)
MODELS = {"base": "roberta-base", "large": "roberta-large"}  # checkpoint size -> its RoBERTa
ERROR_CODES = ("WEIGHTS_MISSING", "DEPENDENCY_MISSING", "BAD_REQUEST", "PROTOCOL_MISMATCH", "INTERNAL")
# Test fault hook: "exit-in-batch:K[:ONCE_FILE]" makes the worker die (exit 70) after reading its
# K-th batch and before answering it; with ONCE_FILE, only while that file does not exist yet.
FAULT_ENV = "CTBENCH_ALIGNSCORE_FAULT"


def checkpoint_name(model: str) -> str:
    return f"AlignScore-{model}.ckpt"


def weights_problems(weights: str, model: str) -> list[str]:
    """What the weights folder lacks for `model` (base/large), as paths; empty when complete."""
    roberta = os.path.join(weights, MODELS[model])
    wanted = [os.path.join(weights, checkpoint_name(model)), os.path.join(roberta, "config.json"),
              os.path.join(weights, "nltk_data", "tokenizers", "punkt_tab", "english")]
    missing = [p for p in wanted if not os.path.exists(p)]
    if os.path.isdir(roberta) and not any(os.path.exists(os.path.join(roberta, f))
                                          for f in ("model.safetensors", "pytorch_model.bin")):
        missing.append(os.path.join(roberta, "model.safetensors"))
    return missing


class Worker:
    def __init__(self, out):
        self.out = out
        self.batches_seen = 0

    def send(self, message: dict) -> None:
        self.out.write(json.dumps(message, allow_nan=False) + "\n")
        self.out.flush()

    def error(self, code: str, message: str, batch=None) -> None:
        self.send({"type": "error", "code": code, "message": message, "batch": batch})

    def load(self, weights: str, model: str, device: str, batch_size: int):
        missing = weights_problems(weights, model)
        if missing:
            self.error("WEIGHTS_MISSING", f"AlignScore-{model} weights incomplete in {weights}: missing "
                       + ", ".join(missing) + " (bench metrics fetch alignscore --weights DIR)")
            return None
        try:
            import nltk
            import torch
            import transformers

            stub_spacy()  # after transformers, which probes for spaCy at import
            from alignscore import AlignScore
        except ImportError as exc:
            self.error("DEPENDENCY_MISSING", f"python package {exc.name!r} is not installed in {sys.prefix} "
                       "(bench metrics setup alignscore)")
            return None
        nltk.data.path.insert(0, os.path.join(weights, "nltk_data"))
        try:
            nltk.tokenize.sent_tokenize("A check. Of Punkt.")
        except LookupError as exc:
            self.error("WEIGHTS_MISSING", f"NLTK's punkt_tab in {weights}/nltk_data is unusable: {exc}")
            return None
        torch.manual_seed(0)
        scorer = AlignScore(model=os.path.join(weights, MODELS[model]), batch_size=batch_size, device=device,
                            ckpt_path=os.path.join(weights, checkpoint_name(model)), evaluation_mode=MODE,
                            verbose=False)
        from importlib.metadata import version

        self.send({"type": "hello", "protocol": PROTOCOL_VERSION, "model": f"AlignScore-{model}", "mode": MODE,
                   "versions": {"alignscore": version("alignscore-speedofmagic"), "torch": torch.__version__,
                                "transformers": transformers.__version__}})
        return scorer

    def serve(self, scorer, lines) -> None:
        for line in lines:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except json.JSONDecodeError as exc:
                self.error("BAD_REQUEST", f"not JSON: {exc}")
                continue
            kind = request.get("type") if isinstance(request, dict) else None
            if kind == "bye":
                return
            if kind != "score":
                self.error("BAD_REQUEST", f"unknown message type {kind!r} (expected 'score' or 'bye')")
                continue
            batch = request.get("batch")
            items = request.get("items")
            problem = _items_problem(items)
            if problem:
                self.error("BAD_REQUEST", problem, batch)
                continue
            self.batches_seen += 1
            _maybe_fault(self.batches_seen)
            scored = [i for i in items if i["claim"].strip()]  # a blank claim has no sentence to score
            try:
                values = scorer.score(contexts=[i["context"] for i in scored],
                                      claims=[i["claim"] for i in scored]) if scored else []
            except Exception as exc:  # the batch fails, the worker stays up
                self.error("INTERNAL", f"{type(exc).__name__}: {exc}", batch)
                continue
            by_id = {i["id"]: _finite(v) for i, v in zip(scored, values)}
            self.send({"type": "scores", "batch": batch,
                       "scores": [{"id": i["id"], "score": by_id.get(i["id"])} for i in items]})


def _items_problem(items) -> str | None:
    if not isinstance(items, list):
        return "'items' must be a list"
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            return f"items[{n}] is not an object"
        for key in ("id", "context", "claim"):
            if not isinstance(item.get(key), str):
                return f"items[{n}].{key} must be a string"
    return None


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _maybe_fault(batch_number: int) -> None:
    spec = os.environ.get(FAULT_ENV, "")
    if not spec.startswith("exit-in-batch:"):
        return
    parts = spec.split(":", 2)
    if int(parts[1]) != batch_number:
        return
    if len(parts) == 3:
        if os.path.exists(parts[2]):
            return
        open(parts[2], "w").close()
    os._exit(70)


def stub_spacy() -> None:
    """AlignScore's Inferencer calls spacy.load('en_core_web_sm') at start but uses spaCy only in
    its SMART modes, never in nli_sp. spaCy's English model is not on PyPI, so the venv leaves
    spaCy out and this stand-in refuses any use."""
    try:
        import en_core_web_sm  # noqa: F401
        import spacy  # noqa: F401
        return
    except ImportError:
        pass

    class _NoSpacy:
        def __call__(self, *args, **kwargs):
            raise RuntimeError("spaCy is not installed in this environment (only the nli_sp mode is supported)")

    class _SpacyStandIn(types.ModuleType):
        def load(self, name, *args, **kwargs) -> _NoSpacy:
            return _NoSpacy()

    import importlib.machinery

    stub = _SpacyStandIn("spacy")
    stub.__spec__ = importlib.machinery.ModuleSpec("spacy", None)
    sys.modules["spacy"] = stub


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="AlignScore worker (JSON lines on stdin/stdout)")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--model", choices=sorted(MODELS), default="base")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--protocol", type=int, default=PROTOCOL_VERSION)
    args = parser.parse_args(argv)
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the protocol
    sys.stdout = sys.stderr
    worker = Worker(out)
    if args.protocol != PROTOCOL_VERSION:
        worker.error("PROTOCOL_MISMATCH", f"this worker speaks protocol {PROTOCOL_VERSION}, not {args.protocol}")
        return 2
    scorer = worker.load(args.weights, args.model, args.device, args.batch_size)
    if scorer is None:
        return 2
    worker.serve(scorer, sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
