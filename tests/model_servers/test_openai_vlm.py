"""`openai-vlm`: a real `bench serve openai-vlm` process and `bench run --endpoints` against a
loopback server that speaks the OpenAI chat-completions wire format and checks, per request,
the number, size, format and orientation of the slice images it received; and the per-item
outcomes (retries, refusal, content filter, empty reply, timeout, connection errors), the key
and external-host rules, in-process over real gRPC."""
from __future__ import annotations

import io
import json
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openai", reason="needs openai: pip install -e .[test]")
Image = pytest.importorskip("PIL.Image", reason="needs pillow (the decoder the checks use): pip install -e .[test]")

from click.testing import CliRunner
from runner_helpers import bench, wait_for

from ctbench.cli import main
from ctbench.llm.testing import FakeLLMServer, FakeReply
from ctbench.model_servers.openai_vlm.png import decode_png, encode_png
from ctbench.model_servers.registry import get_model_class
from ctbench.model_servers.vlm_common.inputs import preset, sized_slice_spec
from ctbench.model_servers.vlm_common.loopback import ask, serving
from ctbench.preprocess.orientation_probe import check_markers, expected_marker_positions, make_probe_volume
from ctbench.preprocess.volume import save_volume

SECRET = "sk-test-not-a-real-key-4f1c"
STORAGE = ("LPS", "RAS", "ASL")  # identity, flipped in-plane, permuted axes
SIZED = {"preset": "medgemma", "num_slices": "9", "slice_size": "48x40"}


def decoded_slices(request) -> np.ndarray:
    """The request's images as an (N, rows, cols, 3) stack; every one must be a PNG data: URI."""
    images = request.images()
    assert {media for media, _ in images} == {"image/png"}, [media for media, _ in images]
    return np.stack([np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) for _, data in images])


class ProbeChecker:
    """A responder that answers 'left' only when the images hold the probe exactly where the
    preset's orientation contract says; anything else is answered 'wrong' and recorded."""

    def __init__(self, spec, count: int, size: tuple[int, int]):
        self.spec, self.count, self.size = spec, count, size
        self.problems: list[str] = []
        self.keys: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, request) -> FakeReply:
        with self.lock:
            self.keys.add(request.api_key)
        stack = decoded_slices(request)
        problems = []
        if stack.shape != (self.count, *self.size, 3):
            problems.append(f"got images {stack.shape}, expected {(self.count, *self.size, 3)}")
        else:
            problems += check_markers(self.spec, make_probe_volume("LPS"), stack)
        if request.user.count("SLICE ") != self.count or "Question: Which side" not in request.user:
            problems.append(f"prompt text: {request.user[-120:]!r}")
        with self.lock:
            self.problems += problems
        return FakeReply("wrong" if problems else "left")


def probe_dataset(root: Path) -> Path:
    (root / "volumes").mkdir(parents=True)
    qa = {}
    for code in STORAGE:
        name = f"probe_{code}.nii.gz"
        save_volume(make_probe_volume(code), root / "volumes" / name)
        qa[name] = {"image_path": f"volumes/{name}", "qa_pairs": [
            {"question": "Which side holds the faintest marker?", "answer": "left", "options": ["left", "right"],
             "question_type": "laterality", "category": ["laterality"]}]}
    path = root / "qa_pairs.json"
    path.write_text(json.dumps(qa))
    return path


@pytest.mark.slow
def test_bench_run_sends_the_presets_slices_in_the_orientation_the_contract_says(tmp_path):
    """Three storage orientations of the probe, one `bench serve` process, `bench run --endpoints`:
    every request carries 9 PNG slices of 48x40 with the markers where the preset declares."""
    spec = sized_slice_spec(preset("medgemma", "authors"), 9, (48, 40))
    assert None not in expected_marker_positions(spec, make_probe_volume("LPS")).values()  # all three markers seen
    checker = ProbeChecker(spec, 9, (48, 40))
    dataset = probe_dataset(tmp_path / "data")
    port_file = tmp_path / "server.port"
    with FakeLLMServer(checker) as fake:
        args = [f"--option={k}={v}" for k, v in {**SIZED, "base_url": fake.openai_base_url, "model": "probe-vlm"}.items()]
        server = bench("serve", "openai-vlm", "--port", "0", "--port-file", str(port_file), *args,
                       env={"OPENAI_API_KEY": SECRET})
        try:
            wait_for(lambda: port_file.exists() or server.poll() is not None, 60, "the openai-vlm server's port file")
            assert server.poll() is None, server.communicate()[0]
            endpoint = f"openai-vlm=127.0.0.1:{port_file.read_text()}"
            run = bench("run", "--endpoints", endpoint, "--dataset", str(dataset), "--out", str(tmp_path / "run"))
            run_output, _ = run.communicate(timeout=300)
        finally:
            server.terminate()
            server_log, _ = server.communicate(timeout=30)
    assert run.returncode == 0, run_output
    assert checker.problems == [], checker.problems
    assert len(fake.requests) == len(STORAGE)
    ledger = [json.loads(line) for line in (tmp_path / "run" / "predictions" / "openai-vlm.jsonl").read_text().splitlines()]
    assert sorted(r["answer"] for r in ledger) == ["left"] * len(STORAGE), ledger
    assert checker.keys == {SECRET}  # the key from the environment reached the endpoint ...
    run_record = (tmp_path / "run" / "run.json").read_text()
    assert SECRET not in server_log and SECRET not in run_record and SECRET not in run_output  # ... and nothing else
    card = json.loads(run_record)
    text = json.dumps(card)
    host = fake.openai_base_url.split("//")[1].split("/")[0]
    assert f"probe-vlm at {host}" in text and '"preset": "medgemma/authors"' in text


def test_the_probe_check_fails_when_slices_are_not_reoriented():
    """The check above can fail: the published variant (no reorientation) of a RAS-stored probe
    puts the left marker on the wrong side."""
    authors = sized_slice_spec(preset("medgemma", "authors"), 9, (48, 40))
    published = sized_slice_spec(preset("medgemma", "published"), 9, (48, 40))
    as_stored = published.apply(make_probe_volume("RAS"))
    assert check_markers(authors, make_probe_volume("LPS"), as_stored)
    assert check_markers(authors, make_probe_volume("LPS"), authors.apply(make_probe_volume("RAS"))) == []


# --- per-item outcomes, in-process over real gRPC ----------------------------------------------
class Scripted:
    """Replies by question: 'busy ...' fails twice (429 or 503) before answering, 'refuse', 'filtered',
    'empty' and 'slow' get what their names say, anything else an answer."""

    def __init__(self):
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, request) -> FakeReply:
        question = request.user.rsplit("Question: ", 1)[-1]
        with self.lock:
            self.attempts[question] = self.attempts.get(question, 0) + 1
            attempt = self.attempts[question]
        return reply_for(question, attempt)


def reply_for(question: str, attempt: int) -> FakeReply:
    if question.startswith("busy") and attempt <= 2:
        return FakeReply(status=429 if "429" in question else 503, retry_after=0.01)
    if question.startswith("refuse"):
        return FakeReply(refusal="I can't help with that.")
    if question.startswith("filtered"):
        return FakeReply("", finish_reason="content_filter")
    if question.startswith("empty"):
        return FakeReply("", finish_reason="length")
    if question.startswith("slow"):
        return FakeReply("too late", delay_s=2.0)
    return FakeReply(f"answer to {question}")


def make_model(base_url: str, **extra):
    options = {"base_url": base_url, "model": "m", "num_slices": "4", "slice_size": "32x32", "backoff_s": "0.01",
               "timeout_s": "0.5", "max_retries": "2", **extra}
    return get_model_class("openai-vlm")(**options)


def probe_root(tmp_path: Path) -> tuple[Path, str, str]:
    import hashlib

    path = tmp_path / "probe.nii.gz"
    save_volume(make_probe_volume("RAS"), path)
    return tmp_path, path.name, "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_each_failure_is_that_questions_alone_and_typed(tmp_path):
    root, relative, volume_id = probe_root(tmp_path)
    questions = ["busy 429?", "busy 503?", "refuse?", "filtered?", "empty?", "slow?", "fine?"]
    script = Scripted()
    with FakeLLMServer(script) as fake:
        model = make_model(fake.openai_base_url, max_batch_size="16", concurrency="8")
        model.max_wait_ms = 200.0
        with serving(model, root) as (address, _):
            answers = ask(address, relative, volume_id, questions)
    by_question = {questions[int(qid.split("::")[1])]: a for qid, a in answers.items()}
    outcome = {q: (a.status.error_type or "ok", a.text) for q, a in by_question.items()}
    assert outcome["busy 429?"] == ("ok", "answer to busy 429?")  # retried twice, then answered
    assert outcome["busy 503?"] == ("ok", "answer to busy 503?")
    assert outcome["fine?"] == ("ok", "answer to fine?")
    assert outcome["refuse?"][0] == "Refused" and "can't help" in by_question["refuse?"].status.message
    assert outcome["filtered?"][0] == "ContentFiltered"
    assert outcome["empty?"][0] == "EmptyReply" and "length" in by_question["empty?"].status.message
    assert outcome["slow?"][0] == "LLMTimeout"
    assert by_question["slow?"].status.code == 4  # DEADLINE_EXCEEDED: asked again when the run resumes
    assert by_question["refuse?"].status.code == 3  # INVALID_ARGUMENT: settled
    assert script.attempts["busy 429?"] == 3 and script.attempts["busy 503?"] == 3
    assert script.attempts["refuse?"] == script.attempts["empty?"] == 1  # unusable replies are never retried
    assert script.attempts["slow?"] == 3  # timeouts are retried (max_retries=2)
    assert len(fake.requests) == sum(script.attempts.values())


def test_connection_errors_are_retried_then_unavailable(tmp_path):
    root, relative, volume_id = probe_root(tmp_path)
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    model = make_model(f"http://127.0.0.1:{closed}/v1")
    with serving(model, root) as (address, _):
        answers = ask(address, relative, volume_id, ["anyone there?"])
    (answer,) = answers.values()
    assert (answer.status.error_type, answer.status.code) == ("LLMError", 14)  # UNAVAILABLE
    assert "3 attempt" in answer.status.message
    assert model.client.stats.calls == 3 and model.client.stats.retries == 2


# --- startup rules: `bench serve` stops with a one-line reason -------------------------------
def serve(*options: str, env: dict | None = None):
    args = ["serve", "openai-vlm", "--port", "0"] + [f"--option={o}" for o in options]
    return CliRunner().invoke(main, args, env=env)


def test_external_host_is_refused_without_allow_external():
    result = serve("base_url=https://api.openai.com/v1", "model=gpt-4o", env={"OPENAI_API_KEY": SECRET})
    assert result.exit_code == 1 and "allow_external" in result.output and "api.openai.com" in result.output


def test_external_host_with_allow_external_needs_the_key_from_the_environment():
    result = serve("base_url=https://api.openai.com/v1", "model=gpt-4o", "allow_external=true",
                   "api_key_env=CTBENCH_TEST_VLM_KEY", env={"CTBENCH_TEST_VLM_KEY": None})
    assert result.exit_code == 1 and "set $CTBENCH_TEST_VLM_KEY" in result.output


def test_external_host_with_allow_external_and_a_key_is_accepted(monkeypatch):
    monkeypatch.setenv("CTBENCH_TEST_VLM_KEY", SECRET)
    model = get_model_class("openai-vlm")(base_url="https://api.openai.com/v1", model="gpt-4o",
                                          allow_external="true", api_key_env="CTBENCH_TEST_VLM_KEY")
    assert model.card().weights == "gpt-4o at api.openai.com" and SECRET not in repr(model.card())


def test_the_name_option_names_the_card_so_endpoints_can_sit_side_by_side():
    model = get_model_class("openai-vlm")(base_url="http://127.0.0.1:9/v1", model="gpt-4o", name="gpt-4o")
    assert model.card().name == "gpt-4o"
    assert get_model_class("openai-vlm")(base_url="http://127.0.0.1:9/v1", model="m").card().name == "openai-vlm"


@pytest.mark.parametrize("options, message", [
    (("base_url=http://127.0.0.1:9/v1", "model=m", f"api_key={SECRET}"), "environment only"),
    (("model=m",), "base_url"),
    (("base_url=http://127.0.0.1:9/v1", "model=m", "preset=radfm"), "Slice presets: "),
    (("base_url=http://127.0.0.1:9/v1", "model=m", "preset=vila-m3", "num_slices=4"), "no num_slices"),
    (("base_url=http://127.0.0.1:9/v1", "model=m", "slice_size=big"), "ROWSxCOLS"),
    (("base_url=http://127.0.0.1:9/v1", "model=m", "temperture=0"), "unknown option"),
])
def test_bad_options_stop_the_server_with_a_reason(options, message):
    result = serve(*options)
    assert result.exit_code == 1 and message in result.output, result.output
    assert SECRET not in result.output


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 7, 3), (40, 48, 3)])
def test_png_round_trips_through_an_independent_decoder(shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(image))))
    assert decoded.shape == shape and np.array_equal(decoded, image)
    assert np.array_equal(decode_png(encode_png(image)), image)  # what InspectInput shows of the slices


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 4), np.uint8)])
def test_png_refuses_what_is_not_rgb_uint8(bad):
    with pytest.raises(ValueError, match="uint8"):
        encode_png(bad)


def test_passes_every_conformance_check(tmp_path):
    from ctbench.conformance import CHECKS, ConformanceOptions, run_conformance

    with FakeLLMServer(lambda request: FakeReply("left")) as fake:
        with serving(make_model(fake.openai_base_url, timeout_s="30", num_slices="16"), tmp_path) as (address, _):
            report = run_conformance(address, ConformanceOptions(data_root=tmp_path, timeout_s=60))
    assert {r.name: r.status for r in report.results} == dict.fromkeys(CHECKS, "pass"), report.to_text()
    assert report.model["name"] == "openai-vlm"
