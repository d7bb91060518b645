"""Measure judge throughput against the loopback fake server (no network, no model).

    python -m ctbench.evaluation.judge_throughput --items 2000 --batch 8 --concurrency 4 --latency 0.2

Reports items/s for a cold pass, the share of calls saved by batching (1 - calls/items) and by the
per-item verdict cache on a second pass (with a different batch size, so request-level caching
could not help).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from ctbench.evaluation.judges import JudgeItem, JudgeSpec, LLMJudge, load_prompt
from ctbench.evaluation.judges.fake import judge_responder
from ctbench.llm.testing import FakeLLMServer, FakeReply


def measure(items: list[JudgeItem], batch: int, concurrency: int, latency_s: float, backend: str = "openai") -> dict:
    def responder(req):
        reply = judge_responder(req)
        return FakeReply(reply.text, delay_s=latency_s)

    with tempfile.TemporaryDirectory() as tmp, FakeLLMServer(responder) as server:
        url = server.openai_base_url if backend == "openai" else server.gemini_base_url
        spec = JudgeSpec("bench", backend, "judge-model", url)
        cache = Path(tmp) / "cache.sqlite"
        judge = LLMJudge.create(spec, load_prompt(), batch_size=batch, concurrency=concurrency, cache_path=cache)
        t0 = time.perf_counter()
        verdicts = judge.judge(items)
        cold = time.perf_counter() - t0
        calls_cold = len(server.requests)
        again = LLMJudge.create(spec, load_prompt(), batch_size=max(1, batch - 1), concurrency=concurrency,
                                cache_path=cache)
        t0 = time.perf_counter()
        again.judge(items)
        warm = time.perf_counter() - t0
        calls_warm = len(server.requests) - calls_cold
    sent = len(items) - judge.stats.not_sent
    return {
        "backend": backend, "items": len(items), "batch": batch, "concurrency": concurrency,
        "server_latency_s": latency_s, "cold_s": round(cold, 3), "items_per_s": round(len(items) / cold, 1),
        "calls": calls_cold, "calls_saved_by_batching": round(1 - calls_cold / max(sent, 1), 4),
        "not_sent_empty": judge.stats.not_sent, "failures": sum(v.is_correct is None for v in verdicts),
        "second_pass_calls": calls_warm, "second_pass_s": round(warm, 3),
        "calls_saved_by_cache_on_second_pass": round(1 - calls_warm / max(calls_cold, 1), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", default=None, help="a reference predictions JSONL (default: synthetic items)")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds the fake server waits per call")
    parser.add_argument("--backend", default="openai", choices=["openai", "gemini"])
    args = parser.parse_args()
    if args.predictions:
        rows = [json.loads(line) for line in Path(args.predictions).read_text().splitlines()][: args.items]
        items = [JudgeItem(f"q{i}", r["question"], r["answer"], r["prediction"]) for i, r in enumerate(rows)]
    else:
        items = [JudgeItem(f"q{i}", f"Which side is finding {i}?", "left", "left" if i % 3 else "right")
                 for i in range(args.items)]
    print(json.dumps(measure(items, args.batch, args.concurrency, args.latency, args.backend)))


if __name__ == "__main__":
    main()
