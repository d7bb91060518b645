"""`bench conformance` passes against every baseline and fails, with a useful report, against a
deliberately broken server."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ctbench.conformance import CHECKS, ConformanceOptions, run_conformance
from ctbench.errors import UnknownName

BASELINES = ["chance", "blind", "geometric"]


@pytest.fixture
def baseline(request, tmp_path):
    """A baseline served by the local-process backend; yields (address, host data root)."""
    pytest.importorskip("ctbench.model_servers.sdk", reason="model-server SDK not merged yet")
    from ctbench.runners.backends.base import ServerSpec
    from ctbench.runners.backends.local import LocalProcessBackend
    from ctbench.runners.health import wait_until_serving

    data_root = tmp_path / "data"
    data_root.mkdir()
    name = request.param
    with LocalProcessBackend() as backend:
        endpoint = backend.start(ServerSpec(name=name, model=name), data_root, tmp_path / "logs")
        wait_until_serving(endpoint.address, 60, name, lambda: backend.is_alive(name), lambda: backend.logs(name))
        yield endpoint.address, data_root


@pytest.mark.slow
@pytest.mark.parametrize("baseline", BASELINES, indirect=True)
def test_each_baseline_conforms(baseline):
    address, data_root = baseline
    report = run_conformance(address, ConformanceOptions(data_root=data_root, timeout_s=60))
    assert report.passed, report.to_text()
    assert {r.name for r in report.results} == set(CHECKS)
    statuses = {r.name: r.status for r in report.results}
    assert statuses["reference"] == statuses["inline"] == "pass"
    assert not list(data_root.iterdir()), "probe volumes are cleaned up"


def test_broken_server_fails_with_a_report_naming_each_broken_promise(broken_server):
    report = run_conformance(broken_server, ConformanceOptions(timeout_s=20))
    assert not report.passed
    by_name = {r.name: r for r in report.results}
    assert by_name["health"].status == "pass"
    describe = by_name["describe"]
    assert describe.status == "fail"
    assert any("license" in p for p in describe.problems)
    assert any("max_chunk_bytes" in p for p in describe.problems)
    bad = by_name["bad-items"]
    assert bad.status == "fail"
    assert any("broke the stream" in p and "INTERNAL" in p for p in bad.problems)
    assert by_name["reuse"].status == "fail"
    assert any("model_version" in p for p in by_name["reuse"].problems)
    # By reference is declared unsupported but not refused with a typed UNIMPLEMENTED.
    assert by_name["reference"].status == "fail"
    text = report.to_text()
    assert "DOES NOT CONFORM" in text and "FAIL  describe" in text


def test_server_that_never_turns_healthy_fails_health_within_the_bound(never_healthy_server):
    report = run_conformance(never_healthy_server, ConformanceOptions(health_timeout_s=1))
    health = report.results[0]
    assert health.status == "fail"
    assert "within 1s (last: NOT_SERVING)" in health.problems[0]
    assert all(r.status == "skip" for r in report.results[1:])


def test_unreachable_address_fails_health_not_crashes():
    report = run_conformance("127.0.0.1:1", ConformanceOptions(health_timeout_s=0.5))
    assert not report.passed
    assert "UNAVAILABLE" in report.results[0].problems[0]


def test_unknown_check_name_lists_the_available_ones():
    with pytest.raises(UnknownName, match="Available: health, describe"):
        run_conformance("127.0.0.1:1", ConformanceOptions(only=("nope",)))


def test_cli_exits_1_and_writes_json_for_a_broken_server(broken_server, tmp_path):
    from ctbench.cli import main

    out = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["conformance", broken_server, "--timeout", "20", "--json", str(out)])
    assert result.exit_code == 1, result.output
    assert "DOES NOT CONFORM" in result.output
    doc = json.loads(out.read_text())
    assert doc["passed"] is False and doc["counts"]["fail"] >= 3


def test_cli_rejects_an_address_without_port():
    from ctbench.cli import main

    result = CliRunner().invoke(main, ["conformance", "localhost"])
    assert result.exit_code == 2 and "HOST:PORT" in result.output


def test_orientation_check_catches_a_server_that_drops_the_direction_matrix():
    """The classic bug: reading the voxels but not the header's direction cosines."""
    pytest.importorskip("scipy")
    from ctbench.model_servers.baselines.geometric import GeometricExpert
    from ctbench.model_servers.sdk import ModelServer, ServerOptions
    from ctbench.preprocess.volume import Volume

    class DropsDirection(GeometricExpert):
        name = "drops-direction"

        def preprocess(self, volume):
            return super().preprocess(Volume(volume.array, volume.spacing, volume.origin, [[1, 0, 0], [0, 1, 0], [0, 0, 1]]))

    server = ModelServer(DropsDirection(), ServerOptions(host="127.0.0.1", port=0))
    port = server.start()
    try:
        report = run_conformance(f"127.0.0.1:{port}", ConformanceOptions(only=("orientation",), timeout_s=60))
    finally:
        server.stop(grace=0)
    orientation = report.results[-1]
    assert orientation.name == "orientation" and orientation.status == "fail"
    assert "answers differ by storage order" in orientation.problems[0]


def test_template_server_from_the_guide_conforms_and_reads_orientation_right():
    import importlib.util

    from ctbench.model_servers.sdk import ModelServer, ServerOptions

    path = Path(__file__).resolve().parents[2] / "dockerfiles" / "template" / "template_server.py"
    spec = importlib.util.spec_from_file_location("template_server", path)
    template = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(template)
    server = ModelServer(template.TemplateModel(), ServerOptions(host="127.0.0.1", port=0))
    port = server.start()
    try:
        report = run_conformance(f"127.0.0.1:{port}", ConformanceOptions(timeout_s=60))
    finally:
        server.stop(grace=0)
    assert report.passed, report.to_text()
    orientation = {r.name: r for r in report.results}["orientation"]
    assert orientation.status == "pass" and "6/6 name the right lung" in orientation.detail


def test_orientation_check_passes_a_constant_answer_but_says_it_shows_nothing():
    """Consistency is all the check can require (random-weight VLMs answer gibberish); a model
    that answers the same whatever the volume passes, and the detail says what that is worth."""
    from ctbench.model_servers.sdk import InputSpec, Model, ModelServer, ServerOptions

    class AlwaysLeft(Model):
        name = "always-left"
        version = "1"
        license = "Apache-2.0"
        transports = ("inline",)

        def input_spec(self) -> InputSpec:
            return InputSpec(name="raw", variant="", kind="volume3d")

        def answer(self, batch):
            return ["left"] * len(batch)

    server = ModelServer(AlwaysLeft(), ServerOptions(host="127.0.0.1", port=0))
    port = server.start()
    try:
        report = run_conformance(f"127.0.0.1:{port}", ConformanceOptions(only=("orientation",), timeout_s=60))
    finally:
        server.stop(grace=0)
    orientation = report.results[-1]
    assert orientation.status == "pass", report.to_text()
    assert "3/6 name the right lung" in orientation.detail
    assert "every answer was 'left' whatever the lung" in orientation.detail


def test_cli_needs_exactly_one_of_address_image_or_serve():
    from ctbench.cli import main

    assert CliRunner().invoke(main, ["conformance"]).exit_code == 2
    result = CliRunner().invoke(main, ["conformance", "127.0.0.1:1", "--image", "x"])
    assert result.exit_code == 2 and "one of HOST:PORT, --image IMAGE or --serve MODEL" in result.output
    result = CliRunner().invoke(main, ["conformance", "127.0.0.1:1", "--serve", "chance"])
    assert result.exit_code == 2 and "one of HOST:PORT" in result.output
