"""`bench selftest MODEL`: a tiny random-weight model built with the server's own classes, served
by `bench serve` as its own process on loopback, asked phantom questions over gRPC; every
stage reported, and the first failing one named with its cause and a non-zero exit."""
from __future__ import annotations

import json

import pytest
from bad_checkpoints import prefixed_lingshu
from click.testing import CliRunner

from ctbench.errors import UnknownName
from ctbench.model_servers import selftest
from ctbench.model_servers.selftest import STAGES, TinyModel, run_selftest


@pytest.mark.slow
def test_medgemma_selftest_passes_every_stage_with_open_and_option_questions(tmp_path):
    report = run_selftest("medgemma", workdir=tmp_path)
    assert report.passed, report.to_text()
    assert [s.name for s in report.stages] == list(STAGES)
    assert [bool(a.options) for a in report.answers] == [False, True, True]
    assert all(a.status == "OK" for a in report.answers)
    assert report.exit_code == 0
    assert "SELFTEST PASSED" in report.to_text()
    assert (tmp_path / "logs" / "medgemma.log").is_file()  # the server ran as its own process


@pytest.mark.slow
def test_bench_selftest_cli_prints_each_stage_and_writes_json_for_lingshu(tmp_path):
    from ctbench.cli import main

    out = tmp_path / "selftest.json"
    result = CliRunner().invoke(main, ["selftest", "lingshu", "--workdir", str(tmp_path / "work"), "--json", str(out)])
    assert result.exit_code == 0, result.output
    for stage in STAGES:
        assert f"ok   {stage}" in result.output
    assert "SELFTEST PASSED: lingshu" in result.output
    doc = json.loads(out.read_text())
    assert doc["passed"] is True and [s["name"] for s in doc["stages"]] == list(STAGES)
    assert doc["answers"][1]["options"] == ["left", "right"]


@pytest.mark.slow
def test_a_checkpoint_that_loads_nothing_fails_the_load_stage_with_the_reason(tmp_path, monkeypatch):
    tiny = TinyModel(("torch", "transformers"), prefixed_lingshu, selftest.TINY_MODELS["lingshu"].options)
    monkeypatch.setitem(selftest.TINY_MODELS, "lingshu", tiny)
    report = run_selftest("lingshu", workdir=tmp_path, load_timeout_s=120)
    assert not report.passed and report.exit_code == 1
    assert [s.name for s in report.stages] == ["imports", "build", "serve", "load"]
    load = report.stages[-1]
    assert not load.ok and "NOT_SERVING" in load.detail
    assert "random init" in load.detail and "module.lm_head.weight" in load.detail
    assert "SELFTEST FAILED: lingshu at stage load" in report.to_text()


def test_a_missing_module_fails_the_imports_stage_naming_it(monkeypatch):
    tiny = TinyModel(("torch", "ctbench_no_such_module"), lambda out: out)
    monkeypatch.setitem(selftest.TINY_MODELS, "medgemma", tiny)
    report = run_selftest("medgemma")
    assert [(s.name, s.ok) for s in report.stages] == [("imports", False)]
    assert "ctbench_no_such_module" in report.stages[0].detail
    assert report.exit_code == 1


@pytest.mark.slow
def test_an_option_reaches_the_served_model(tmp_path):
    from ctbench.cli import main

    # A variant lingshu does not have: `bench serve` refuses it, so the option was passed on.
    result = CliRunner().invoke(main, ["selftest", "lingshu", "--option", "variant=ctbench-no-such-variant",
                                       "--workdir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "SELFTEST FAILED: lingshu at stage" in result.output
    assert "ctbench-no-such-variant" in result.output
    assert "ok   build" in result.output  # the tiny model itself was built as always


def test_an_option_without_a_value_is_refused():
    from ctbench.cli import main

    result = CliRunner().invoke(main, ["selftest", "lingshu", "--option", "variant"])
    assert result.exit_code == 2 and "expected KEY=VALUE, got 'variant'" in result.output


def test_unknown_model_lists_the_models_with_a_selftest():
    with pytest.raises(UnknownName, match=r"No selftest for 'no-such-model'\. Available: .*lingshu, .*medgemma"):
        run_selftest("no-such-model")


def test_a_health_reply_that_comes_late_while_loading_is_asked_again(monkeypatch):
    """A server busy importing and building (a loaded CPU) can miss the health call's deadline."""
    import grpc

    from ctbench.model_servers.vlm_common import loopback

    class Late(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.DEADLINE_EXCEEDED

    replies = iter([Late(), "NOT_SERVING", "SERVING"])

    def health(address):
        reply = next(replies)
        if isinstance(reply, Exception):
            raise reply
        return reply

    class Alive:
        def is_alive(self, name):
            return True

    monkeypatch.setattr(loopback, "health", health)
    monkeypatch.setattr(selftest, "load_error", lambda address: None)
    assert selftest._wait_loaded("127.0.0.1:1", "merlin", Alive(), timeout_s=30) == "health SERVING"
