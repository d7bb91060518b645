"""`geometric` does only the work a question needs: the rule is chosen from the words first,
the volume is analysed at the resolution the rules need, and a volume with nothing to find
gets a typed answer."""
from __future__ import annotations

import hashlib
import json

import grpc
import numpy as np
import pytest

pytest.importorskip("scipy")
from ctbench.model_servers.baselines import geometric
from ctbench.model_servers.baselines.geometric import GeometricExpert, analyse, answer_question, working_resolution
from ctbench.model_servers.sdk import ModelServer, ServerOptions
from ctbench.model_servers.sdk.model import QuestionItem
from ctbench.preprocess.volume import Volume, load_volume, save_volume
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc

OPEN_QUESTION = "Describe the location of the liver lesion relative to the portal vein."
RULE_QUESTION = "Which lung contains the pulmonary nodule?"


def _phantom_volume(phantom_small, index=0) -> tuple[Volume, list[dict]]:
    qa = json.loads(phantom_small.read_text())
    name = sorted(qa)[index]
    return load_volume(phantom_small.parent / qa[name]["image_path"]), qa[name]["qa_pairs"]


def test_open_questions_are_refused_without_analysing_the_volume(phantom_small, monkeypatch):
    def no_analysis(volume):
        raise AssertionError("analysed a volume for an open question")

    monkeypatch.setattr(geometric, "analyse", no_analysis)
    model = GeometricExpert()
    volume, _ = _phantom_volume(phantom_small)
    prepared = model.preprocess(volume)
    results = model.answer([QuestionItem("v::0", OPEN_QUESTION, prepared=prepared)])
    assert type(results[0]).__name__ == "UnsupportedQuestion"
    assert "does not know how to answer" in str(results[0])


def test_a_volume_is_analysed_once_for_all_its_rule_questions(phantom_small, monkeypatch):
    calls = []
    real = geometric.analyse
    monkeypatch.setattr(geometric, "analyse", lambda v: calls.append(1) or real(v))
    model = GeometricExpert()
    volume, pairs = _phantom_volume(phantom_small)
    prepared = model.preprocess(volume)
    items = [QuestionItem(f"v::{i}", p["question"], prepared=prepared) for i, p in enumerate(pairs)]
    assert model.answer(items) == [p["answer"] for p in pairs]
    assert len(calls) == 1


def test_fine_volumes_are_analysed_at_the_working_resolution(phantom_small, monkeypatch):
    """Twice as fine in every axis (8x the voxels): same answers, morphology on the coarse grid."""
    from scipy import ndimage

    volume, pairs = _phantom_volume(phantom_small, 1)
    fine_array = volume.array.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)
    spacing = tuple(s / 2 for s in volume.spacing)
    # the fine grid's first voxel centre sits a quarter of a coarse voxel before the coarse one
    origin = volume.index_to_lps(np.array([-0.25, -0.25, -0.25]))
    fine = Volume(fine_array, spacing, tuple(origin), volume.direction)
    shapes = []
    real = ndimage.binary_closing
    monkeypatch.setattr(ndimage, "binary_closing", lambda a, **kw: shapes.append(a.shape) or real(a, **kw))
    findings = analyse(fine)
    assert [answer_question(p["question"], findings) for p in pairs] == [p["answer"] for p in pairs]
    coarse = working_resolution(fine).array.shape
    assert np.prod(coarse) * 4 <= fine_array.size
    assert shapes and all(all(s <= c for s, c in zip(shape, coarse)) for shape in shapes)


@pytest.mark.parametrize("spacing, steps", [
    ((0.75, 0.75, 4.0 / 3.0), (3, 5, 5)),  # CT-RATE: (k, j, i) steps
    ((4.0, 4.0, 6.25), (1, 1, 1)),  # the small phantom is analysed as it is
    ((0.5, 2.0, 10.0), (1, 2, 8)),
])
def test_working_resolution_keeps_the_geometry(spacing, steps):
    direction = np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1.0]])
    volume = Volume(np.arange(30 * 20 * 40, dtype=np.int16).reshape(30, 20, 40), spacing, (3.0, -2.0, 7.5), direction)
    work = working_resolution(volume)
    assert work.array.shape == tuple(-(-n // s) for n, s in zip(volume.array.shape, steps))
    k, j, i = (min(2, n - 1) for n in work.array.shape)
    assert work.array[k, j, i] == volume.array[k * steps[0], j * steps[1], i * steps[2]]
    assert np.allclose(work.index_to_lps([i, j, k]), volume.index_to_lps([i * steps[2], j * steps[1], k * steps[0]]))


def test_an_all_air_volume_gets_a_typed_answer_through_the_server(tmp_path):
    path = tmp_path / "air.nii.gz"
    save_volume(Volume(np.full((20, 24, 24), -1000, np.int16), (4.0, 4.0, 6.0)), path)
    data = path.read_bytes()
    volume_id = "sha256:" + hashlib.sha256(data).hexdigest()
    requests = [
        pb.AnswerRequest(volume=pb.VolumeHeader(volume_id=volume_id, inline=pb.InlineVolume(total_bytes=len(data), filename="air.nii.gz"))),
        pb.AnswerRequest(chunk=pb.VolumeChunk(volume_id=volume_id, offset=0, data=data)),
        *[pb.AnswerRequest(question=pb.Question(question_id=f"air::{i}", volume_id=volume_id, text=text))
          for i, text in enumerate([RULE_QUESTION, "Which is larger, the pulmonary nodule or the renal cyst?",
                                    "Is the pulmonary nodule in the medial or the lateral part of the lung?"])],
    ]
    server = ModelServer(GeometricExpert(), ServerOptions(host="127.0.0.1", port=0))
    port = server.start()
    try:
        assert server.loaded.wait(10)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.AnswerVolumeQuestionStub(channel)
            answers = [r.answer for r in stub.Answer(iter(requests), timeout=30) if r.WhichOneof("item") == "answer"]
    finally:
        server.stop(0)
    assert len(answers) == 3
    for answer in answers:
        assert answer.status.error_type == "UnsupportedQuestion", answer.status
        assert "could not find" in answer.status.message


def test_perf_geometric_times_decode_and_analysis_side_by_side(phantom_small):
    from click.testing import CliRunner

    from ctbench.cli import main

    result = CliRunner().invoke(main, ["perf", "geometric", "--data", str(phantom_small), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["correct"] == report["questions"] == 40
    assert len(report["volumes"]) == 4
    assert all(v["decode_s"] > 0 and v["geometric_s"] > 0 and v["questions"] == 10 for v in report["volumes"])
    result = CliRunner().invoke(main, ["perf", "geometric", "--data", str(phantom_small)])
    assert "decode s" in result.output and "answers correct: 40/40" in result.output
