"""Throughput of the slice-based VLM servers (MedGemma, Lingshu) with and without per-volume reuse.

What the GPU host runs (nothing to download: random weights from the published configs):

    python -m ctbench.model_servers.vlm_common.bench_vlm --model medgemma --size full \\
        --batch-sizes 1,4,16,32 --volumes 2 --questions 32 --phantom-size ct-rate --out medgemma.json

For each (reuse, batch size) it serves the model through the real server on loopback, streams
`volumes x questions` phantom questions over gRPC (as the runner does) and reports
questions/s, the time split (volume load + preprocessing, vision encoding, the rest of the
model calls = prefill + decoding), the fraction of wall time the model was busy (the rest is
harness: gRPC, queueing, batching), and peak GPU memory. `--size tiny` runs the same on a CPU
in seconds (the CI test). Every figure comes from this run; nothing is extrapolated.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class BenchResult:
    model: str
    size: str
    reuse: bool
    batch_size: int
    questions: int
    wall_s: float
    questions_per_s: float
    mean_batch: float
    preprocess_s: float  # volume load + slice rendering + processor, once per volume (prefix encoding excluded)
    vision_s: float  # vision tower (inside prefix encoding or generate)
    prefix_s: float  # shared-prefix encoding incl. vision (reuse only)
    model_s: float  # all model calls (prefix encodings + answer batches)
    model_busy_fraction: float  # model_s / wall_s; 1 - this is harness + idle time
    gpu_util_mean: float | None  # nvidia-smi style utilisation sampled while streaming
    peak_gpu_bytes: int
    device: str


class _Timer:
    """Accumulates wall time of a wrapped callable (synchronising CUDA so the time is real)."""

    def __init__(self):
        self.seconds = 0.0
        self.lock = threading.Lock()

    def wrap(self, fn, cuda: bool):
        import torch

        def timed(*args, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if cuda:
                    torch.cuda.synchronize()
                with self.lock:
                    self.seconds += time.perf_counter() - start

        return timed


def _vision_tower(model):
    inner = model.model
    for name in ("vision_tower", "visual"):
        if hasattr(inner, name):
            return getattr(inner, name)
    raise AttributeError(f"no vision tower found on {type(inner).__name__}")


def _time_module(module, timer: _Timer, cuda: bool) -> None:
    """Forward hooks that add each forward pass of `module` to `timer`."""
    import torch

    starts: list[float] = []

    def before(mod, args):
        if cuda:
            torch.cuda.synchronize()
        starts.append(time.perf_counter())

    def after(mod, args, output):
        if cuda:
            torch.cuda.synchronize()
        with timer.lock:
            timer.seconds += time.perf_counter() - starts.pop()

    module.register_forward_pre_hook(before)
    module.register_forward_hook(after)


def _gpu_sampler(stop: threading.Event, samples: list) -> None:
    import torch

    while not stop.is_set():
        try:
            samples.append(float(torch.cuda.utilization()))
        except Exception:  # no pynvml: utilisation unknown
            return
        stop.wait(0.05)


def run_benchmark(model_name: str, size: str, batch_sizes: list[int], volumes: int, questions: int,
                  max_new_tokens: int, weights: Path | None = None, phantom_size: str = "small",
                  num_slices: int | None = None, slice_size: str | None = None, workdir: Path | None = None,
                  reuse_modes: tuple[bool, ...] = (False, True)) -> list[BenchResult]:
    import torch

    from ctbench.datasets.phantom.generate import PhantomConfig, generate
    from ctbench.model_servers.registry import get_model_class
    from ctbench.model_servers.vlm_common import random_weights
    from ctbench.model_servers.vlm_common.loopback import ask_many, serving
    from ctbench.model_servers.vlm_common.slice_vlm import SliceVLM

    workdir = Path(workdir or tempfile.mkdtemp(prefix="ctbench-bench-"))
    if weights is None:
        builder = {"medgemma": random_weights.build_medgemma_dir, "lingshu": random_weights.build_lingshu_dir}[model_name]
        weights = builder(workdir / f"{model_name}-{size}", size=size)
    qa = json.loads(generate(workdir / "phantom", PhantomConfig(n_volumes=volumes, size=phantom_size)).read_text())
    base_questions = [q["question"] for entry in qa.values() for q in entry["qa_pairs"]]
    # `questions` per volume, cycling through the phantom's questions (distinct ids).
    jobs = []
    for _index, entry in enumerate(qa.values()):
        path = workdir / "phantom" / entry["image_path"]
        texts = [base_questions[i % len(base_questions)] for i in range(questions)]
        jobs.append((entry["image_path"], path, texts))

    options = {"weights": str(weights), "max_new_tokens": str(max_new_tokens)}
    if num_slices:
        options["num_slices"] = str(num_slices)
    if slice_size:
        options["slice_size"] = slice_size
    model = get_model_class(model_name)(**options, max_batch_size=str(max(batch_sizes)))
    if not isinstance(model, SliceVLM):
        raise TypeError(f"{model_name}: the benchmark times SliceVLM servers, not {type(model).__name__}")
    model.load()
    cuda = model.device().startswith("cuda")
    vision, prefix, calls = _Timer(), _Timer(), _Timer()
    _time_module(_vision_tower(model.model), vision, cuda)
    decoder = model.loaded_decoder
    decoder.encode_prefix = prefix.wrap(decoder.encode_prefix, cuda)
    answer, encode = model.answer, model.encode_volume
    model.answer = calls.wrap(answer, cuda)
    model.load = lambda: None  # loaded once; every server below reuses it

    results = []
    for reuse in reuse_modes:
        for batch in batch_sizes:
            model.reuse = reuse
            model.max_batch_size = batch
            model.max_wait_ms = 50.0
            for timer in (vision, prefix, calls):
                timer.seconds = 0.0
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            encode_timer = _Timer()
            model.encode_volume = encode_timer.wrap(encode, cuda)
            samples: list[float] = []
            stop = threading.Event()
            with serving(model, workdir / "phantom") as (address, _server):
                sampler = threading.Thread(target=_gpu_sampler, args=(stop, samples), daemon=True)
                if cuda:
                    sampler.start()
                start = time.perf_counter()
                answers, load_ms = ask_many(address, jobs)
                wall = time.perf_counter() - start
                stop.set()
            failed = [a for a in answers if a.status.code != 0]
            if failed:
                raise RuntimeError(f"{len(failed)} questions failed, first: {failed[0].status.message}")
            model_s = calls.seconds + prefix.seconds
            results.append(BenchResult(
                model=model_name, size=size, reuse=reuse, batch_size=batch, questions=len(answers), wall_s=wall,
                questions_per_s=len(answers) / wall,
                mean_batch=sum(a.timings.batch_size for a in answers) / len(answers),
                preprocess_s=max(0.0, sum(load_ms) / 1e3 - prefix.seconds), vision_s=vision.seconds, prefix_s=prefix.seconds, model_s=model_s,
                model_busy_fraction=min(1.0, model_s / wall),
                gpu_util_mean=(sum(samples) / len(samples) / 100.0) if samples else None,
                peak_gpu_bytes=int(torch.cuda.max_memory_allocated()) if cuda else 0,
                device=torch.cuda.get_device_name() if cuda else "cpu",
            ))
    model.answer, model.encode_volume = answer, encode
    return results


def table(results: list[BenchResult]) -> str:
    lines = ["| model | reuse | batch | q/s | mean batch | preprocess s | vision s | model s | model busy | GPU util | peak GPU GiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        util = "n/a" if r.gpu_util_mean is None else f"{r.gpu_util_mean:.0%}"
        lines.append(f"| {r.model}-{r.size} | {r.reuse} | {r.batch_size} | {r.questions_per_s:.3f} | {r.mean_batch:.1f} | "
                     f"{r.preprocess_s:.2f} | {r.vision_s:.2f} | {r.model_s:.2f} | {r.model_busy_fraction:.0%} | {util} | "
                     f"{r.peak_gpu_bytes / 2**30:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="bench perf vlm", description=__doc__.split("\n")[0],
        epilog="example: bench perf vlm --model medgemma --size full --batch-sizes 1,4,16,32 --out medgemma.json")
    parser.add_argument("--model", choices=["medgemma", "lingshu"], required=True)
    parser.add_argument("--size", choices=["tiny", "full"], default="tiny")
    parser.add_argument("--weights", type=Path, help="an existing weights directory instead of random weights")
    parser.add_argument("--batch-sizes", default="1,4,16,32")
    parser.add_argument("--volumes", type=int, default=2)
    parser.add_argument("--questions", type=int, default=32, help="questions per volume")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--phantom-size", default="small", help="'small' (96x96x64) or 'ct-rate' (512x512x300)")
    parser.add_argument("--num-slices", type=int)
    parser.add_argument("--slice-size")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    results = run_benchmark(args.model, args.size, [int(b) for b in args.batch_sizes.split(",")], args.volumes,
                            args.questions, args.max_new_tokens, args.weights, args.phantom_size, args.num_slices,
                            args.slice_size)
    print(table(results))
    if args.out:
        args.out.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
