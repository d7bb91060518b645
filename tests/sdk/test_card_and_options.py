"""The SDK checks what a model declares: its options by name, and its card's keys against the
protocol. A misspelling is refused with a message naming it, never dropped silently."""
from __future__ import annotations

import grpc
import pytest
from ctbench_test_models import EchoModel
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sdk_stream import start

from ctbench.errors import InvalidModelCard, InvalidOption
from ctbench.model_servers.baselines.blind import Blind
from ctbench.model_servers.baselines.chance import Chance
from ctbench.model_servers.sdk.model_core import ServerLimits
from ctbench.model_servers.sdk.servicer import card_to_proto
from ctbench.v1 import answer_volume_question_pb2 as pb
from ctbench.v1 import answer_volume_question_pb2_grpc as pb_grpc


def test_a_declared_model_refuses_a_misspelt_option():
    assert Chance(seed="7").options == {"seed": "7"}
    with pytest.raises(InvalidOption, match=r"chance: unknown option\(s\) sed\. Allowed: seed"):
        Chance(sed="7")
    with pytest.raises(InvalidOption, match=r"blind: unknown option\(s\) seed\. Allowed: \(none\)"):
        Blind(seed="1")


def test_a_model_that_declares_no_options_keeps_them_unchecked():
    assert EchoModel(delay_ms="5", anything="x").options["anything"] == "x"


def test_serve_reports_a_misspelt_option_before_anything_runs(tmp_path):
    from click.testing import CliRunner

    from ctbench.cli import main

    result = CliRunner().invoke(main, ["serve", "chance", "--port", "0", "--option", "sed=7"])
    assert result.exit_code != 0
    assert "unknown option(s) sed" in result.output


class MisspeltCard(EchoModel):
    name = "misspelt"

    def input_spec(self):
        return {**super().input_spec().to_dict(), "orientaton": "LPS"}


class ExtraCardKey(EchoModel):
    name = "extra-key"

    def card(self):
        return {"name": self.name, "version": self.version, "licence": "MIT"}


def test_card_keys_outside_the_protocol_are_named():
    limits = ServerLimits(data_root=None)
    with pytest.raises(InvalidModelCard, match=r"unknown input key\(s\) orientaton"):
        card_to_proto(MisspeltCard().card(), limits)
    with pytest.raises(InvalidModelCard, match=r"unknown card key\(s\) licence"):
        card_to_proto(ExtraCardKey().card(), limits)
    assert card_to_proto(EchoModel().card(), limits).name == "echo"


def test_a_server_with_a_bad_card_stays_not_serving_and_says_why(tmp_path):
    model = MisspeltCard()
    server, address = start(model, tmp_path)
    try:
        with grpc.insecure_channel(address) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.RpcError) as info:
                pb_grpc.AnswerVolumeQuestionStub(channel).Describe(pb.DescribeRequest(), timeout=5)
        assert "orientaton" in (info.value.details() or "")
        assert "orientaton" in server.core.load_error
    finally:
        server.stop(0)


# --- the typed card and InputSpec, and the deprecated dict form ---------------------------------
class DictSpec(EchoModel):
    name = "dict-spec"

    def input_spec(self):
        return {"name": "raw-ras", "kind": "volume3d", "orientation": "RAS", "axis_order": "DHW",
                "intensity": "raw HU", "windows": [[-1000, 400]], "details": {"geometry": "none"}}


def test_input_spec_and_card_are_typed():
    from ctbench.model_servers.sdk import InputSpec, ModelCard

    card = Chance().card()
    assert isinstance(card, ModelCard) and isinstance(card.input, InputSpec)
    assert card.input.kind == "none" and card.name == "chance" and card.generation == {"seed": "0"}
    assert isinstance(EchoModel().input_spec(), InputSpec)


def test_an_input_spec_returned_as_a_dict_still_serves_with_a_deprecation_warning(tmp_path):
    from ctbench.model_servers.sdk import InputSpec

    with pytest.warns(DeprecationWarning, match=r"dict-spec: input_spec\(\) returned a dict; return a "
                                                 r"ctbench\.preprocess\.input_spec\.InputSpec instead"):
        card = DictSpec().card()
    assert isinstance(card.input, InputSpec)
    assert (card.input.orientation, card.input.windows, card.input.variant) == ("RAS", ((-1000.0, 400.0),), "")
    server, address = start(DictSpec(), tmp_path)
    try:
        with grpc.insecure_channel(address) as channel:
            wire = pb_grpc.AnswerVolumeQuestionStub(channel).Describe(pb.DescribeRequest(), timeout=5)
    finally:
        server.stop(0)
    assert wire.input.orientation == "RAS" and wire.input.intensity == "raw HU"
    assert [(w.lower, w.upper) for w in wire.input.windows] == [(-1000.0, 400.0)]


def test_an_input_spec_that_is_neither_a_spec_nor_a_dict_is_refused_naming_the_fix():
    class Stringly(EchoModel):
        name = "stringly"

        def input_spec(self):
            return "volume3d"

    with pytest.raises(InvalidModelCard, match=r"'stringly': input_spec\(\) returned str, not a ctbench\.preprocess"):
        Stringly().card()


def test_an_invalid_declaration_in_a_dict_is_named_with_its_model():
    class BadKind(EchoModel):
        name = "bad-kind"

        def input_spec(self):
            return {"name": "x", "kind": "volume4d"}

    with pytest.warns(DeprecationWarning), pytest.raises(InvalidModelCard, match=r"'bad-kind'.*kind must be one of"):
        BadKind().card()


def test_a_typed_card_refuses_unknown_fields_and_transports():
    import dataclasses

    from ctbench.model_servers.sdk import ModelCard

    card = EchoModel().card()
    with pytest.raises(TypeError, match="licence"):
        dataclasses.replace(card, licence="MIT")
    with pytest.raises(InvalidModelCard, match=r"unknown transport\(s\) carrier-pigeon"):
        dataclasses.replace(card, transports=("inline", "carrier-pigeon"))
    with pytest.raises(InvalidModelCard, match="not a ctbench.preprocess.input_spec.InputSpec"):
        ModelCard(name="x", input={"name": "x", "kind": "none"})


def test_the_card_crosses_protobuf_once_each_way():
    from ctbench.model_servers.sdk import ModelCard
    from ctbench.preprocess.input_spec import get_spec

    spec = get_spec("medgemma", "published")
    card = ModelCard(name="m", input=spec, version="2", weights="w", max_batch_size=3, generation={"seed": "1"},
                     inspect_input=True, gpu_memory_bytes=7)
    limits = ServerLimits(data_root=None, max_inline_bytes=123)
    wire = card.to_proto(limits)
    assert list(wire.transports) == [pb.VOLUME_TRANSPORT_INLINE]  # no data root: no references
    back = ModelCard.from_proto(wire)
    assert back.input.to_dict() == spec.to_dict()
    assert (back.name, back.version, back.weights, back.max_batch_size, back.generation, back.inspect_input,
            back.gpu_memory_bytes) == ("m", "2", "w", 3, {"seed": "1"}, True, 7)
    assert back.transports == ("inline",) and back.max_inline_bytes == 123 and back.sdk_version


def test_input_spec_from_dict_names_unknown_keys():
    from ctbench.preprocess.input_spec import InputSpec, UnknownInputKey, get_spec

    spec = get_spec("m3d-lamed")
    assert InputSpec.from_dict(spec.to_dict()).to_dict() == spec.to_dict()
    with pytest.raises(UnknownInputKey, match=r"unknown input key\(s\) spacing \(known: axis_order"):
        InputSpec.from_dict({**spec.to_dict(), "spacing": [1, 1, 1]})
