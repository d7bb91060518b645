"""`bench selftest MODEL`: does this environment load and serve MODEL, before any weights?

Run inside a model's image (or a venv built from its requirements) right after building it.
It builds a tiny random-weight instance of the model's real architecture from the classes the
server loads, serves it with `bench serve` as its own process on loopback, and asks a phantom
CT volume a few questions over gRPC, one open and the rest with options. Each stage is timed
and reported; the first failing stage stops the run and names what broke:

  imports   the modules the server's load imports (a missing package is named here)
  build     the tiny random-weight weights directory, written with the authors' classes
  serve     `bench serve MODEL --option weights=DIR ...` listening on a loopback port
  load      the server loading that directory (health SERVING, or the server's load error)
  describe  Describe answers with the model's own name and version
  answers   every phantom question answered with status OK

Random weights answer gibberish: the answers show the whole path runs, not that it is right.
"""
from __future__ import annotations

import importlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ctbench.errors import ModelError, ModelNotReady, UnknownName, WrongServer
from ctbench.model_servers.sdk.pipeline import STILL_LOADING
from ctbench.model_servers.vlm_common.loopback import TINY_OPTIONS
from ctbench.project import SHADOWED_NAMES, import_installed

STAGES = ("imports", "build", "serve", "load", "describe", "answers")


@dataclass(frozen=True)
class TinyModel:
    """How to build and serve a tiny random-weight instance of one server's model."""

    imports: tuple[str, ...]  # what the server's load imports
    builder: str | Callable[[Path], Path]  # "module:function" (or the function): out_dir -> weights dir
    options: dict = field(default_factory=dict)  # `bench serve` options for the tiny model
    answer_timeout_s: float = 120.0  # for all phantom questions (the authors' full-size encoders are slow on CPU)


CPU_SHORT = {"device": "cpu", "max_new_tokens": "8"}

TINY_MODELS: dict[str, TinyModel] = {
    "medgemma": TinyModel(("torch", "transformers", "PIL"),
                          "ctbench.model_servers.vlm_common.random_weights:build_medgemma_dir", dict(TINY_OPTIONS)),
    "lingshu": TinyModel(("torch", "transformers", "PIL"),
                         "ctbench.model_servers.vlm_common.random_weights:build_lingshu_dir", dict(TINY_OPTIONS)),
    # the authors' classes from their checkouts (CTBENCH_M3D_REPO, CTBENCH_MED3DVLM_REPO, CTBENCH_RADFM_REPO)
    "m3d-lamed": TinyModel(("torch", "transformers", "sentencepiece", "monai", "einops"),
                           "ctbench.model_servers.m3d_lamed.tiny:build_m3d_lamed_dir", dict(CPU_SHORT), 900.0),
    "med3dvlm": TinyModel(("torch", "transformers", "timm", "torchvision", "monai", "einops"),
                          "ctbench.model_servers.med3dvlm.tiny:build_med3dvlm_dir", dict(CPU_SHORT), 900.0),
    # RadFM's vision side keeps the authors' fixed 512x512 sizes and its generate() 200 tokens: slow on CPU
    "radfm": TinyModel(("torch", "transformers", "torchvision", "PIL", "einops_exts", "sentencepiece"),
                       "ctbench.model_servers.radfm.tiny:build_radfm_dir", {"device": "cpu"}, 1800.0),
    # merlin-vlm from PyPI; the full I3D ResNet-152, a 4096-wide one-layer RadLLaMA (merlin/tiny_weights.py).
    "merlin": TinyModel(("torch", "torchvision", "transformers", "peft", "merlin"),
                        "ctbench.model_servers.merlin.tiny_weights:build_merlin_dir",
                        dict(CPU_SHORT), answer_timeout_s=600.0),
    # The authors' LLaVA fork and CT-CLIP from CTBENCH_CTCHAT_REPO / CTBENCH_CTCLIP_REPO (ct_chat/tiny_weights.py).
    "ct-chat": TinyModel(("torch", "torchvision", "transformers", "peft", "einops_exts", "transformer_maskgit"),
                         "ctbench.model_servers.ct_chat.tiny_weights:build_ct_chat_dir",
                         dict(CPU_SHORT), answer_timeout_s=900.0),
    # VILA from the framework checkout's thirdparty/VILA (CTBENCH_VILA_M3_REPO), VILA's own LlavaLlamaModel
    # (vila_m3/tiny_weights.py) with a tiny VISTA3D bundle; `--option variant=published` always runs the expert.
    "vila-m3": TinyModel(("torch", "transformers", "s2wrapper", "datasets", "monai", "ignite", "skimage", "PIL"),
                         "ctbench.model_servers.vila_m3.tiny_weights:build_vila_m3_dir",
                         dict(CPU_SHORT), answer_timeout_s=900.0),
}


@dataclass
class Stage:
    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class PhantomAnswer:
    question: str
    options: list[str]
    status: str  # "OK" or the error type
    text: str


@dataclass
class SelftestReport:
    model: str
    stages: list[Stage] = field(default_factory=list)
    answers: list[PhantomAnswer] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return len(self.stages) == len(STAGES) and all(s.ok for s in self.stages)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def verdict(self) -> str:
        if self.passed:
            return f"SELFTEST PASSED: {self.model} loads, serves and answers in this environment"
        failed = next((s for s in self.stages if not s.ok), None)
        where = failed.name if failed else "not run"
        return f"SELFTEST FAILED: {self.model} at stage {where}"

    def to_text(self) -> str:
        lines = [f"bench selftest {self.model} (tiny random weights, no downloads)"]
        for stage in self.stages:
            mark = "ok  " if stage.ok else "FAIL"
            lines.append(f"  {mark} {stage.name:<9} {stage.seconds:7.2f} s  {stage.detail}".rstrip())
        for answer in self.answers:
            options = f" [{' / '.join(answer.options)}]" if answer.options else " [open]"
            lines.append(f"       {answer.status:<4} {answer.question}{options} -> {answer.text!r}")
        lines.append(self.verdict())
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"model": self.model, "passed": self.passed, "verdict": self.verdict(),
                "stages": [asdict(s) for s in self.stages], "answers": [asdict(a) for a in self.answers]}


def tiny_model(name: str) -> TinyModel:
    try:
        return TINY_MODELS[name]
    except KeyError:
        raise UnknownName(f"No selftest for {name!r}. Available: {', '.join(sorted(TINY_MODELS))}") from None


def _call(target: str | Callable) -> Callable:
    if callable(target):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


class _StageFailed(Exception):
    pass


def _stage(report: SelftestReport, name: str, step: Callable[[], str]) -> None:
    start = time.perf_counter()
    try:
        detail = step()
        ok = True
    except Exception as exc:  # reported as the failing stage, with its message
        detail, ok = f"{type(exc).__name__}: {exc}", False
    report.stages.append(Stage(name, ok, time.perf_counter() - start, detail))
    if not ok:
        raise _StageFailed(name)


def phantom_questions(root: Path) -> tuple[str, list[tuple[str, list[str]]]]:
    """One phantom CT volume under `root` and its questions: the first asked open, the next
    two with their options. Returns (volume path relative to root, [(question, options)])."""
    from ctbench.datasets.phantom.generate import PhantomConfig, generate

    qa = json.loads(generate(root, PhantomConfig(n_volumes=1)).read_text())
    entry = next(iter(qa.values()))
    pairs = entry["qa_pairs"]
    asked = [(pairs[0]["question"], [])] + [(q["question"], list(q["options"])) for q in pairs[1:3]]
    return entry["image_path"], asked


def load_error(address: str) -> str | None:
    """The server's load error, None while it is still loading (asked with a question the
    server cannot place: before the model is ready it answers ModelNotReady and why)."""
    import grpc

    from ctbench.v1 import answer_volume_question_pb2 as pb
    from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

    probe = pb.AnswerRequest(question=pb.Question(question_id="selftest::probe", volume_id="none", text="?"))
    with grpc.insecure_channel(address) as channel:
        for response in pb_grpc.AnswerVolumeQuestionStub(channel).Answer(iter([probe]), timeout=10):
            if response.WhichOneof("item") == "answer" and response.answer.status.error_type == "ModelNotReady":
                message = response.answer.status.message
                return None if message == STILL_LOADING else message
    return None


def run_selftest(name: str, workdir: Path | None = None, load_timeout_s: float = 300.0,
                 options: dict[str, str] | None = None) -> SelftestReport:
    """Run every stage for server `name`; never raises for a failing stage (see the report).
    `options` are `bench serve` options over the tiny model's own (e.g. ``variant=published``);
    ``weights`` is always the tiny directory."""
    spec = tiny_model(name)
    if options:
        spec = replace(spec, options={**spec.options, **options})
    report = SelftestReport(name)
    with tempfile.TemporaryDirectory(prefix=f"ctbench-selftest-{name}-") as scratch:
        root = Path(workdir) if workdir is not None else Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        try:
            _run_stages(name, spec, root, report, load_timeout_s)
        except _StageFailed:
            pass
    return report


def _run_stages(name: str, spec: TinyModel, root: Path, report: SelftestReport, load_timeout_s: float) -> None:
    from ctbench.model_servers.registry import get_model_class

    def imports() -> str:
        versions = []
        get_model_class(name)
        for module in spec.imports:
            # a name a project folder shadows from the checkout root (datasets) is the installed package's
            imported = import_installed(module) if module in SHADOWED_NAMES else importlib.import_module(module)
            versions.append(f"{module} {getattr(imported, '__version__', '')}".strip())
        return ", ".join(versions)

    _stage(report, "imports", imports)
    weights = root / "weights"
    _stage(report, "build", lambda: f"random weights in {_call(spec.builder)(weights)}")
    data_root = root / "data"
    data_root.mkdir(exist_ok=True)
    relative, questions = phantom_questions(data_root)

    from ctbench.runners.backends.base import ServerSpec
    from ctbench.runners.backends.local import LocalProcessBackend

    options = {**spec.options, "weights": str(weights)}
    args = tuple(a for key, value in options.items() for a in ("--option", f"{key}={value}"))
    with LocalProcessBackend(start_timeout_s=60) as backend:
        endpoint = None

        def serve() -> str:
            nonlocal endpoint
            endpoint = backend.start(ServerSpec(name=name, model=name, args=args), data_root, root / "logs")
            return f"bench serve {name} on {endpoint.address}"

        _stage(report, "serve", serve)
        _stage(report, "load", lambda: _wait_loaded(endpoint.address, name, backend, load_timeout_s))
        _stage(report, "describe", lambda: _describe(endpoint.address, name))
        _stage(report, "answers", lambda: _answers(endpoint.address, data_root, relative, questions, report,
                                                   spec.answer_timeout_s))


def _wait_loaded(address: str, name: str, backend, timeout_s: float) -> str:
    import grpc

    from ctbench.model_servers.vlm_common.loopback import health

    deadline = time.monotonic() + timeout_s
    while True:
        if not backend.is_alive(name):
            raise ModelNotReady(f"the server exited while loading:\n{backend.logs(name)}")
        try:
            status = health(address)
            if status == "SERVING":
                return "health SERVING"
            error = load_error(address)
        except grpc.RpcError as exc:  # a server busy loading may answer late: ask again
            if exc.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
                raise
            status, error = f"no reply ({exc.code().name})", None
        if error is not None:
            raise ModelNotReady(f"health {status}: {error}")
        if time.monotonic() > deadline:
            raise ModelNotReady(f"still {status} after {timeout_s:.0f} s")
        time.sleep(0.2)


def _describe(address: str, name: str) -> str:
    from ctbench.model_servers.vlm_common.loopback import describe

    card = describe(address)
    if card.name != name:
        raise WrongServer(f"Describe names {card.name!r}, not {name!r}")
    return f"{card.name} {card.version}"


def _answers(address: str, data_root: Path, relative: str, questions, report: SelftestReport,
             timeout_s: float = 120.0) -> str:
    import hashlib

    from ctbench.model_servers.vlm_common.loopback import ask

    volume_id = "sha256:" + hashlib.sha256((data_root / relative).read_bytes()).hexdigest()
    answers = ask(address, relative, volume_id, [q for q, _ in questions], timeout=timeout_s,
                  options=[o for _, o in questions])
    bad = []
    for index, (question, options) in enumerate(questions):
        answer = answers.get(f"v::{index}")
        if answer is None:
            status = "none"
        else:
            status = (answer.status.error_type or f"code {answer.status.code}") if answer.status.code else "OK"
        report.answers.append(PhantomAnswer(question, options, status, answer.text if answer is not None else ""))
        if status != "OK":
            bad.append(f"{question!r}: {status} {answer.status.message if answer is not None else 'no answer'}")
    if bad:
        raise ModelError("; ".join(bad))
    return f"{len(questions)} of {len(questions)} phantom questions answered"
