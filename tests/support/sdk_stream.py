"""Request builders and a server starter shared by the SDK tests."""
from __future__ import annotations

import hashlib
from pathlib import Path

import grpc
import numpy as np

from ctbench.model_servers.sdk import ModelServer, ServerOptions
from ctbench.preprocess.volume import Volume, save_volume
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc


def vid(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_volume(path: Path, shape=(4, 5, 6), fill=1, dtype=np.int16) -> bytes:
    save_volume(Volume(np.full(shape, fill, dtype=dtype)), path)
    return path.read_bytes()


def start(model, data_root=None, **kw):
    server = ModelServer(model, ServerOptions(port=0, data_root=data_root, **kw))
    port = server.start()
    assert server.loaded.wait(10) or not model.ready
    return server, f"127.0.0.1:{port}"


def header(volume_id: str, path: str) -> pb.AnswerRequest:
    return pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=volume_id, path=path))


def inline(volume_id: str, data: bytes, filename="v.nii.gz", chunk=1 << 20) -> list[pb.AnswerRequest]:
    reqs = [pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=volume_id, inline=pb.InlineVolume(total_bytes=len(data), filename=filename)))]
    for offset in range(0, len(data), chunk):
        reqs.append(pb.AnswerRequest(chunk=pb.VolumeChunk(volume_id=volume_id, offset=offset, data=data[offset: offset + chunk])))
    return reqs


def question(qid: str, volume_id: str, text="q?", options=()) -> pb.AnswerRequest:
    return pb.AnswerRequest(question=pb.Question(question_id=qid, volume_id=volume_id, text=text, options=list(options)))


def exchange(address: str, requests, timeout=20) -> tuple[dict, list]:
    """Send all requests, collect answers by question id and volume statuses."""
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.AnswerVolumeQuestionStub(channel)
        answers, volumes = {}, []
        for response in stub.Answer(iter(requests), timeout=timeout):
            if response.WhichOneof("item") == "answer":
                assert response.answer.question_id not in answers, "an answer came twice"
                answers[response.answer.question_id] = response.answer
            else:
                volumes.append(response.volume)
        return answers, volumes
