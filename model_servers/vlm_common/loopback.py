"""Serving a model in-process on loopback and talking to it over real gRPC: used by the tests
and by the GPU benchmark (`model_servers/vlm_common/bench_vlm.py`)."""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

# Small enough for a 2-core CI machine: 4 slices of 32x32, 8 new tokens.
TINY_OPTIONS = {"num_slices": "4", "slice_size": "32x32", "max_new_tokens": "8", "device": "cpu"}


@contextmanager
def serving(model, data_root: Path | None, wait_loaded: bool = True):
    from ctbench.model_servers.sdk import ModelServer, ServerOptions

    server = ModelServer(model, ServerOptions(host="127.0.0.1", port=0, data_root=data_root, grace_s=1.0))
    port = server.start()
    try:
        if wait_loaded:
            deadline = time.monotonic() + 60
            while not model.ready and server.core.load_error is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert model.ready, server.core.load_error
        yield f"127.0.0.1:{port}", server
    finally:
        server.stop(0.5)


def ask(address: str, volume_relative: str, volume_id: str, questions: list[str], timeout: float = 120.0,
        options: list[list[str]] | None = None) -> dict:
    """Send one volume by reference and its questions (with `options[i]` declared, if given) on
    one Answer stream; answers by question id."""
    import grpc

    from ctbench.v1 import answer_volume_question_pb2 as pb
    from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

    def requests():
        yield pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=volume_id, path=volume_relative))
        for index, text in enumerate(questions):
            declared = options[index] if options else []
            yield pb.AnswerRequest(question=pb.Question(question_id=f"v::{index}", volume_id=volume_id, text=text,
                                                        options=declared))

    answers = {}
    with grpc.insecure_channel(address) as channel:
        for response in pb_grpc.AnswerVolumeQuestionStub(channel).Answer(requests(), timeout=timeout):
            if response.WhichOneof("item") == "answer":
                answers[response.answer.question_id] = response.answer
    return answers


def describe(address: str):
    import grpc

    from ctbench.v1 import answer_volume_question_pb2 as pb
    from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

    with grpc.insecure_channel(address) as channel:
        return pb_grpc.AnswerVolumeQuestionStub(channel).Describe(pb.DescribeRequest(), timeout=10)


def health(address: str) -> str:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def ask_many(address: str, jobs: list[tuple[str, Path, list[str]]], timeout: float = 3600.0) -> tuple[list, list[float]]:
    """Stream several volumes (by reference) and their questions on one Answer call, as the runner
    does; returns every answer and each volume's load_ms."""
    import hashlib

    import grpc

    from ctbench.v1 import answer_volume_question_pb2 as pb
    from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

    def requests():
        for v, (relative, path, questions) in enumerate(jobs):
            vid = "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()
            yield pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=vid, path=relative))
            for q, text in enumerate(questions):
                yield pb.AnswerRequest(question=pb.Question(question_id=f"{v}::{q}", volume_id=vid, text=text))

    answers, load_ms = [], []
    with grpc.insecure_channel(address) as channel:
        for response in pb_grpc.AnswerVolumeQuestionStub(channel).Answer(requests(), timeout=timeout):
            if response.WhichOneof("item") == "answer":
                answers.append(response.answer)
            elif not response.volume.cache_hit:
                load_ms.append(response.volume.load_ms)
    return answers, load_ms
