"""`bench conformance` checks what the model is fed (InspectInput against the card's InputSpec),
open questions and questions with options, timings, and a server that dies: against the template
server from the guide and deliberately broken copies of it, each served over real gRPC."""
from __future__ import annotations

from contextlib import contextmanager

import broken_templates as broken
import pytest

from ctbench.conformance import ConformanceOptions, run_conformance
from ctbench.model_servers.sdk import ModelServer, ServerOptions


@contextmanager
def serving(model, data_root=None):
    server = ModelServer(model, ServerOptions(host="127.0.0.1", port=0, data_root=data_root, grace_s=0.5))
    port = server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=0)


def check(model, *names: str, **options):
    with serving(model) as address:
        report = run_conformance(address, ConformanceOptions(only=names, **{"timeout_s": 60, **options}))
    return report, {r.name: r for r in report.results}


def test_the_template_server_is_fed_what_its_card_declares():
    report, by_name = check(broken.TemplateModel(), "input", "questions")
    assert report.passed, report.to_text()
    fed = by_name["input"]
    assert fed.status == "pass" and "LPS/RAS/ASL/IRP" in fed.detail and "orientation RAS" in fed.detail, fed.detail
    assert "marker HU values match" in fed.detail
    # The template declines open questions: not a failure, but said loudly.
    assert by_name["questions"].status == "pass"
    assert any("declines 3/3 open questions" in w for w in by_name["questions"].warnings)


def test_a_consistent_left_right_mirror_fails_and_is_named():
    report, by_name = check(broken.LeftRightMirroredTemplate(), "input", "orientation")
    assert not report.passed
    fed = by_name["input"]
    assert fed.status == "fail", report.to_text()
    assert all("mirrored along axis 2 (W)" in p for p in fed.problems), fed.problems
    # Its answers do not change with the storage order: the answer-level check cannot see it.
    assert by_name["orientation"].status == "pass"


def test_a_server_that_ignores_the_header_fails_on_every_storage_but_its_own():
    report, by_name = check(broken.HeaderIgnoringTemplate(), "input")
    fed = by_name["input"]
    assert fed.status == "fail", report.to_text()
    failed = {p.split(":", 1)[0] for p in fed.problems}
    assert failed == {"stored LPS", "stored ASL", "stored IRP"}, fed.problems  # stored RAS is what it declares
    assert any("axes permuted or resized" in p for p in fed.problems)


def test_a_server_that_crashes_on_open_questions_fails():
    report, by_name = check(broken.OpenQuestionCrashTemplate(), "questions", "input")
    questions = by_name["questions"]
    assert questions.status == "fail", report.to_text()
    assert sum("an open question" in p and "INTERNAL" in p for p in questions.problems) == 3
    assert not any("with options" in p for p in questions.problems)
    assert by_name["input"].status == "pass"


def test_each_check_is_timed_and_a_slow_answer_warned_about():
    report, by_name = check(broken.SlowTemplate(delay_s="0.4"), "questions", slow_s=0.2)
    questions = by_name["questions"]
    assert questions.slowest_s >= 0.4 and questions.seconds >= questions.slowest_s
    assert any(w.startswith("slow: the answer to") for w in questions.warnings), questions.warnings
    text = report.to_text()
    assert "slowest call" in text and "! slow:" in text


def test_a_timeout_says_that_the_timeout_is_what_failed():
    _report, by_name = check(broken.SlowTemplate(delay_s="3"), "questions", timeout_s=1)
    questions = by_name["questions"]
    assert questions.status == "fail"
    assert any("DEADLINE_EXCEEDED" in p and "--timeout 1s" in p for p in questions.problems), questions.problems


@pytest.mark.parametrize("name", ["chance", "blind", "geometric"])
def test_baselines_pass_the_new_checks(name):
    pytest.importorskip("scipy")
    from ctbench.model_servers.registry import get_model_class

    report, by_name = check(get_model_class(name)(), "input", "questions")
    assert report.passed, report.to_text()
    if name == "geometric":
        assert "orientation as stored" in by_name["input"].detail and "match the declared" in by_name["input"].detail
    else:
        assert "reads no voxels" in by_name["input"].detail


def _serve_and_check(tmp_path, backend, model: str):
    from ctbench.conformance.started_server import run_conformance_started
    from ctbench.runners.backends.base import ServerSpec

    spec = ServerSpec(name="dies", model=f"broken_templates:{model}")
    options = ConformanceOptions(timeout_s=30, health_timeout_s=60)
    return run_conformance_started(backend, spec, options, "dying", backend.what, tmp_path / "logs")


def test_a_server_process_that_dies_is_reported_once_with_its_exit_code_and_log(tmp_path, support_env):
    from ctbench.runners.backends.local import LocalProcessBackend

    class Local(LocalProcessBackend):
        what = "server process"

    report = _serve_and_check(tmp_path, Local(start_timeout_s=60), "OpenQuestionExitTemplate")
    by_name = {r.name: r for r in report.results}
    died = by_name["questions"]
    assert died.status == "fail"
    assert died.problems[0].startswith("the server process exited with code 3"), died.problems
    assert "fatal: open question without options; exiting" in died.problems[0]
    after = list(report.results[list(by_name).index("questions") + 1:])
    assert after and all(r.status == "skip" and "died during the questions check" in r.detail for r in after)
    assert report.to_text().count("Connection refused") <= 1


def test_a_container_that_dies_is_reported_with_the_container_log(tmp_path, support_env):
    """The `--image` path through its seam: the same run as `run_conformance_in_container`, with a
    backend that reports the container's state and log (here a local process stands in for the
    container; the docker backend itself is tested in tests/containers)."""
    from ctbench.runners.backends.local import LocalProcessBackend

    class ContainerLike(LocalProcessBackend):
        what = "container"

        def logs(self, name, tail=40):
            return "container log:\n" + super().logs(name, tail)

    report = _serve_and_check(tmp_path, ContainerLike(start_timeout_s=60), "OpenQuestionExitTemplate")
    died = {r.name: r for r in report.results}["questions"]
    assert died.problems[0].startswith("the container exited with code 3")
    assert "container log:" in died.problems[0] and "fatal: open question" in died.problems[0]


# One preset per geometry and intensity form the check reads (the larger ones cost seconds of
# CPU resampling per probe and add nothing new).
PRESET_CASES = [("m3d-lamed", "authors"), ("m3d-lamed", "published"), ("merlin", "published"),
                ("vila-m3", "authors"), ("lingshu", "published"), ("lingshu", "authors")]


@pytest.mark.parametrize("name,variant", PRESET_CASES)
def test_the_input_check_passes_a_server_fed_exactly_by_its_preset(name, variant):
    from ctbench.model_servers.sdk import Model
    from ctbench.preprocess.input_spec import get_spec

    spec = get_spec(name, variant)

    class PresetFed(Model):
        def preprocess(self, volume):
            return spec.apply(volume)

        def input_spec(self):
            return spec

        def answer(self, batch):
            return ["left"] * len(batch)

    PresetFed.name, PresetFed.version, PresetFed.license = name, "1", "Apache-2.0"
    report, by_name = check(PresetFed(), "input")
    fed = by_name["input"]
    assert fed.status == "pass", report.to_text()
    assert "for LPS/RAS/ASL/IRP" in fed.detail or spec.orientation == "", fed.detail


def test_bench_conformance_serve_fails_the_mirror_and_passes_geometric(support_env):
    """The user's path: `bench conformance --serve MODEL` starts `bench serve` and checks it."""
    pytest.importorskip("scipy")
    from click.testing import CliRunner

    from ctbench.cli import main

    result = CliRunner().invoke(main, ["conformance", "--serve", "broken_templates:LeftRightMirroredTemplate",
                                       "--check", "input", "--timeout", "60"])
    assert result.exit_code == 1, result.output
    assert "FAIL  input" in result.output and "mirrored along axis 2 (W)" in result.output
    result = CliRunner().invoke(main, ["conformance", "--serve", "geometric", "--timeout", "60"])
    assert result.exit_code == 0, result.output
    assert "CONFORMS: 11 passed, 0 failed, 0 skipped" in result.output


def test_a_server_that_exits_at_start_is_reported_with_its_exit_code(tmp_path, support_env):
    from ctbench.runners.backends.local import LocalProcessBackend

    class Local(LocalProcessBackend):
        what = "server process"

    report = _serve_and_check(tmp_path, Local(start_timeout_s=60), "NoSuchModel")
    health = report.results[0]
    assert health.status == "fail" and health.problems[0].startswith("exit code 1: "), health.problems
    assert "NoSuchModel" in health.problems[0]
    assert all(r.status == "skip" for r in report.results[1:])


@pytest.mark.parametrize("declared_change", [{"target_spacing_mm": (2.0, 2.0, 3.0)}, {"axis_order": "DWH"},
                                             {"windows": ((-1350.0, 150.0), (-135.0, 215.0), (0.0, 80.0))}])
def test_the_input_check_fails_a_card_that_misdeclares_spacing_axis_order_or_window(declared_change):
    import dataclasses

    from ctbench.model_servers.sdk import Model
    from ctbench.preprocess.input_spec import get_spec

    name = "lingshu" if "windows" in declared_change else "merlin"
    fed = get_spec(name, "authors" if name == "lingshu" else "published")
    declared = dataclasses.replace(fed, **declared_change)

    class Misdeclared(Model):
        version, license = "1", "Apache-2.0"

        def preprocess(self, volume):
            return fed.apply(volume)

        def input_spec(self):
            return declared

        def answer(self, batch):
            return ["left"] * len(batch)

    Misdeclared.name = name
    report, by_name = check(Misdeclared(), "input")
    assert by_name["input"].status == "fail", report.to_text()
