"""InspectInput through the real servicer over loopback: the model's own preprocessing, never
its `answer`; a bounded, strided sample; typed errors as the call's status."""
from __future__ import annotations

import grpc
import numpy as np
import pytest
from sdk_stream import start, vid, write_volume

from ctbench.conformance.input_check import decode
from ctbench.model_servers.sdk import Model
from ctbench.model_servers.sdk.input_inspection import strides_for
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc


class DoublingModel(Model):
    """Feeds its model the voxels doubled, as float32; `answer` must never run for InspectInput."""

    name = "doubling"
    version = "1"
    license = "Apache-2.0"

    def preprocess(self, volume):
        return np.asarray(volume.array, dtype=np.float32) * 2

    def answer(self, batch):
        raise AssertionError("InspectInput called the model")


class OpaqueModel(DoublingModel):
    name = "opaque"

    def preprocess(self, volume):
        return {"not": "an array"}


def request(data: bytes, max_bytes: int = 0, volume_id: str | None = None) -> pb.InspectInputRequest:
    header = pb.VolumeHeader(volume_id=volume_id or vid(data), inline=pb.InlineVolume(total_bytes=len(data), filename="v.nii.gz"))
    return pb.InspectInputRequest(volume=header, data=data, max_bytes=max_bytes)


@pytest.fixture
def served(request, tmp_path):
    server, address = start(request.param(), tmp_path)
    with grpc.insecure_channel(address) as channel:
        yield pb_grpc.AnswerVolumeQuestionStub(channel), tmp_path
    server.stop(0)


@pytest.mark.parametrize("served", [DoublingModel], indirect=True)
def test_inspect_input_returns_what_preprocess_feeds_the_model_and_the_card_says_so(served):
    stub, tmp_path = served
    data = write_volume(tmp_path / "v.nii.gz", shape=(4, 5, 6), fill=7)
    assert stub.Describe(pb.DescribeRequest(), timeout=10).inspect_input is True
    reply = stub.InspectInput(request(data), timeout=10)
    assert list(reply.shape) == [4, 5, 6] and reply.dtype == "float32" and list(reply.stride) == [1, 1, 1]
    np.testing.assert_array_equal(decode(reply), np.full((4, 5, 6), 14, dtype=np.float32))
    assert reply.minimum == reply.maximum == reply.mean == 14.0
    assert reply.volume_id == vid(data) and reply.input.name == "doubling"


@pytest.mark.parametrize("served", [DoublingModel], indirect=True)
def test_inspect_input_samples_a_large_input_within_the_requested_bound(served):
    stub, tmp_path = served
    data = write_volume(tmp_path / "v.nii.gz", shape=(40, 50, 60), fill=1)
    reply = stub.InspectInput(request(data, max_bytes=8_000), timeout=10)
    assert len(reply.data) <= 8_000 and list(reply.shape) == [40, 50, 60]
    assert list(reply.sampled_shape) == [-(-n // s) for n, s in zip(reply.shape, reply.stride)]
    assert decode(reply).shape == (40, 50, 60)


@pytest.mark.parametrize("served", [DoublingModel], indirect=True)
def test_inspect_input_refuses_bytes_that_do_not_match_the_volume_id(served):
    stub, tmp_path = served
    data = write_volume(tmp_path / "v.nii.gz")
    with pytest.raises(grpc.RpcError) as info:
        stub.InspectInput(request(data, volume_id="sha256:" + "0" * 64), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "InvalidVolume" in info.value.details() and "hash to" in info.value.details()


@pytest.mark.parametrize("served", [OpaqueModel], indirect=True)
def test_inspect_input_of_a_non_array_input_is_unimplemented_and_says_what_to_override(served):
    stub, tmp_path = served
    data = write_volume(tmp_path / "v.nii.gz")
    with pytest.raises(grpc.RpcError) as info:
        stub.InspectInput(request(data), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "Model.model_input" in info.value.details()


def test_a_model_that_reads_no_voxels_declares_no_inspection(tmp_path):
    from ctbench.model_servers.baselines.chance import Chance

    server, address = start(Chance(), tmp_path)
    try:
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.AnswerVolumeQuestionStub(channel)
            assert stub.Describe(pb.DescribeRequest(), timeout=10).inspect_input is False
            data = write_volume(tmp_path / "v.nii.gz")
            with pytest.raises(grpc.RpcError) as info:
                stub.InspectInput(request(data), timeout=10)
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        server.stop(0)


@pytest.mark.parametrize("shape,itemsize,bound", [((85, 896, 896, 3), 1, 3 << 20), ((160, 224, 224), 4, 1 << 20),
                                                  ((4, 5, 6), 4, 1 << 20)])
def test_strides_fit_the_bound_and_keep_the_channel_axis(shape, itemsize, bound):
    strides = strides_for(shape, itemsize, bound)
    sampled = [-(-n // s) for n, s in zip(shape, strides)]
    assert int(np.prod(sampled)) * itemsize <= bound
    if len(shape) == 4:
        assert strides[3] == 1
