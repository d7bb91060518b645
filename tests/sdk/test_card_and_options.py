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
