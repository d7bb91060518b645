"""Time every offline metric over all 9,077 items of one reference model.

    CTBENCH_CACHE=$(mktemp -d) python -m ctbench.evaluation.metric_timing --model radfm

Prints JSON: the full scoring pass (exact/option match, BLEU, METEOR, ROUGE, SBERT, jury) with a
cold embedding cache, the same pass warm, and each metric alone. Point CTBENCH_CACHE at an empty
folder for a cold figure (WordNet is then also rebuilt there, a few seconds).
"""
from __future__ import annotations

import argparse
import json
import os
import time

from ctbench.evaluation.embeddings import SentenceEncoder
from ctbench.evaluation.reference import load_reference_runs, score_reference
from ctbench.evaluation.text_metrics import Bleu, Meteor, Rouge, SbertCosine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="radfm")
    parser.add_argument("--reference", default=None, help="the ct-spatialvqa folder (default: found)")
    args = parser.parse_args()
    ref = load_reference_runs(args.reference)
    out: dict[str, object] = {"model": args.model, "cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    enc = SentenceEncoder()
    t = time.perf_counter()
    score_reference(ref, [Bleu(), Meteor(), Rouge(), SbertCosine(encoder=enc)], models=[args.model])
    out["all_offline_metrics_cold_s"] = round(time.perf_counter() - t, 1)
    out["sbert_texts_encoded"] = enc.encoded
    t = time.perf_counter()
    score_reference(ref, [Bleu(), Meteor(), Rouge(), SbertCosine(encoder=SentenceEncoder())], models=[args.model])
    out["all_offline_metrics_warm_s"] = round(time.perf_counter() - t, 1)
    rows = [json.loads(line) for line in ref.prediction_files[args.model].read_text().splitlines()]
    rows = [r for r in rows if r["prediction"].strip()]
    preds, refs = [r["prediction"].lower() for r in rows], [r["answer"].lower() for r in rows]
    for name, metric in (("bleu", Bleu()), ("meteor", Meteor()), ("rouge", Rouge())):
        t = time.perf_counter()
        metric.corpus(preds, refs)
        out[f"{name}_alone_s"] = round(time.perf_counter() - t, 2)
    uncached = SentenceEncoder(cache=False)
    t = time.perf_counter()
    SbertCosine(encoder=uncached).per_item(preds, refs)
    out["sbert_alone_uncached_s"] = round(time.perf_counter() - t, 1)
    out["sbert_unique_texts"] = uncached.encoded
    out["sbert_pairs"] = len(preds)
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
