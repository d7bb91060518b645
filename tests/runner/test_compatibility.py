"""Versions that meet: the runner uses what both it and a server's card support, and says before
streaming what a server cannot be asked (a table of cards, then real servers over gRPC)."""
from __future__ import annotations

import json

import pytest

import ctbench
from ctbench.compatibility import CAPABILITIES, Wants, negotiate, parse_version
from ctbench.runners.run import RunConfig, run_benchmark

INLINE, REFERENCE = "VOLUME_TRANSPORT_INLINE", "VOLUME_TRANSPORT_REFERENCE"
CURRENT = {"sdk_version": "0.1.0", "transports": [REFERENCE, INLINE], "max_inline_bytes": "1024", "inspect_input": True,
           "inline_hash_follows": True}


def card(**changes):
    out = {**CURRENT, **changes}
    return {k: v for k, v in out.items() if v is not None}


# card, wants -> transport of the real volumes, refused keys
GOOD = [
    (card(), Wants(), "reference", set()),
    (card(), Wants(reference_reachable=False), "inline", set()),
    (card(), Wants(transport="inline"), "inline", set()),
    (card(transports=[REFERENCE]), Wants(inline_controls=("blank",)), "reference", {"control blank"}),
    (card(transports=[INLINE]), Wants(transport="reference"), None, {"volumes"}),
    (card(), Wants(transport="reference", reference_reachable=False), None, {"volumes"}),
    (card(transports=[REFERENCE]), Wants(transport="inline"), None, {"volumes"}),
    (card(transports=[REFERENCE]), Wants(reference_reachable=False), None, {"volumes"}),
    (card(inspect_input=None), Wants(inspect_input=True), "reference", {"inspect_input"}),
    (card(sdk_version="99.0.0"), Wants(inspect_input=True), "reference", set()),
]


@pytest.mark.parametrize("the_card, wants, transport, refused", GOOD)
def test_what_is_asked_is_used_or_refused_by_the_card(the_card, wants, transport, refused):
    result = negotiate("m", the_card, wants, runner_version="0.1.0")
    assert result.transport == transport
    assert set(result.refused) == refused
    for message in result.refused.values():
        assert "server 'm'" in message and f"sdk_version {the_card['sdk_version']}" in message


def test_the_usable_set_lists_what_the_card_declares():
    assert negotiate("m", card(), Wants()).usable == [c.name for c in CAPABILITIES]
    assert negotiate("m", {"transports": [INLINE]}, Wants()).usable == ["inline"]


@pytest.mark.parametrize("sdk, note", [
    ("0.1.0", None), ("0.1", None), ("0.1.0.dev3", None), ("0.0.9", None),
    ("0.2.0", "newer than this runner"), ("1.0.0rc1", "newer than this runner"),
    ("", "sdk_version is empty"), ("banana", "sdk_version is not a version"), (None, "sdk_version is empty"),
])
def test_a_newer_or_unversioned_server_gets_one_note(sdk, note):
    result = negotiate("m", card(sdk_version=sdk), Wants(), runner_version="0.1.0")
    if note is None:
        assert result.notes == []
    else:
        assert len(result.notes) == 1 and note in result.notes[0] and "server 'm'" in result.notes[0]
    assert result.refused == {}


def test_a_server_older_than_a_capability_is_told_which_release_added_it():
    message = negotiate("old", card(sdk_version="0.1.0", inspect_input=None), Wants(inspect_input=True)).refused["inspect_input"]
    assert "predates ctbench 0.2.0" in message and "ctbench>=0.2.0" in message
    message = negotiate("new", card(sdk_version="0.2.0", inspect_input=None), Wants(inspect_input=True),
                        runner_version="0.2.0").refused["inspect_input"]
    assert "does not declare it (inspect_input)" in message


@pytest.mark.parametrize("text, parsed", [("0.1.0", (0, 1, 0)), ("v2", (2,)), ("1.2.3+local", (1, 2, 3)),
                                          ("0.2.0.dev0", (0, 2, 0)),
                                          ("1.0rc2", (1, 0)), ("", None), ("x1", None), ("1..2", None), ("1.0-banana", None)])
def test_versions_parse_to_their_release_numbers(text, parsed):
    assert parse_version(text) == parsed


# --- real servers over gRPC ------------------------------------------------------------------
def _events(config):
    events = []
    result = run_benchmark(config, progress=lambda server, done, total: events.append(("progress", server, done)),
                           announce=lambda message: events.append(("say", message)))
    return result, events


@pytest.mark.slow
def test_a_control_the_server_cannot_take_is_refused_before_streaming_and_others_carry_on(tmp_path, support_env):
    from runner_helpers import write_registry

    registry = write_registry(tmp_path / "registry.yaml", {
        "echo": {"model": "ctbench_test_models:EchoModel"},
        "echo-reference-only": {"model": "ctbench_test_models:ReferenceOnlyEchoModel"},
    })
    out = tmp_path / "run"
    result, events = _events(RunConfig(out_dir=out, servers="echo,echo-reference-only", registry=registry,
                                       backend="local", phantom_volumes=1, controls=["blank"]))
    assert all(server.failure == "" for server in result.servers.values())
    said = [i for i, e in enumerate(events) if e[0] == "say" and "echo-reference-only" in e[1] and "control blank" in e[1]]
    assert len(said) == 1, events
    message = events[said[0]][1]
    assert f"sdk_version {ctbench.__version__}" in message and "travel inline" in message
    answered = [i for i, e in enumerate(events) if e[0] == "progress" and e[1] == "echo-reference-only" and e[2] > 0]
    assert answered and said[0] < answered[0]  # said before its first answer
    refused = [json.loads(line) for line in (out / "controls/blank/predictions/echo-reference-only.jsonl").read_text().splitlines()]
    assert refused and all(line["error"]["type"] == "UnsupportedTransport" for line in refused)
    assert all(json.loads(line)["status"] == "ok" for line in (out / "controls/blank/predictions/echo.jsonl").read_text().splitlines())
    record = json.loads((out / "run.json").read_text())
    negotiated = record["servers"]["echo-reference-only"]["compatibility"]
    assert negotiated["usable"] == ["reference", "inline_budget", "inspect_input"] and negotiated["transport"] == "reference"
    assert list(negotiated["refused"]) == ["control blank"]
    assert record["servers"]["echo"]["compatibility"]["refused"] == {}


@pytest.mark.slow
def test_a_transport_the_server_lacks_fails_that_server_before_streaming(tmp_path, support_env):
    from runner_helpers import write_registry

    registry = write_registry(tmp_path / "registry.yaml", {
        "echo": {"model": "ctbench_test_models:EchoModel"},
        "echo-reference-only": {"model": "ctbench_test_models:ReferenceOnlyEchoModel"},
    })
    out = tmp_path / "run"
    result, _ = _events(RunConfig(out_dir=out, servers="echo,echo-reference-only", registry=registry,
                                  backend="local", phantom_volumes=1, transport="inline"))
    assert result.servers["echo"].failure == "" and result.servers["echo"].ok > 0
    failure = result.servers["echo-reference-only"].failure
    assert "cannot take volumes inline (--transport inline)" in failure and f"sdk_version {ctbench.__version__}" in failure
    lines = [json.loads(line) for line in (out / "predictions/echo-reference-only.jsonl").read_text().splitlines()]
    assert lines and all(line["error"]["type"] == "ServerStartError" for line in lines)


@pytest.mark.slow
def test_a_server_newer_than_the_runner_is_noted_once_and_answers(tmp_path, support_env):
    from runner_helpers import write_registry

    registry = write_registry(tmp_path / "registry.yaml", {
        "echo": {"model": "ctbench_test_models:EchoModel"},
        "echo-newer-sdk": {"model": "ctbench_test_models:NewerSdkEchoModel"},
    })
    out = tmp_path / "run"
    result, events = _events(RunConfig(out_dir=out, servers="echo,echo-newer-sdk", registry=registry,
                                       backend="local", phantom_volumes=1))
    assert all(server.failure == "" and server.errors == 0 for server in result.servers.values())
    notes = [e[1] for e in events if e[0] == "say" and "newer than this runner" in e[1]]
    assert len(notes) == 1 and "echo-newer-sdk" in notes[0] and "sdk_version 99.0.0" in notes[0], events
    record = json.loads((out / "run.json").read_text())
    assert record["servers"]["echo-newer-sdk"]["compatibility"]["sdk_version"] == "99.0.0"
    assert record["servers"]["echo-newer-sdk"]["compatibility"]["notes"] == notes
    assert record["attempts"][-1]["servers"]["echo"]["compatibility"]["notes"] == []


# --- bench conformance -------------------------------------------------------------------------
def _conformance(model, *names: str):
    from ctbench.conformance import ConformanceOptions, run_conformance
    from ctbench.model_servers.sdk import ModelServer, ServerOptions

    server = ModelServer(model, ServerOptions(host="127.0.0.1", port=0, grace_s=0.5))
    port = server.start()
    try:
        report = run_conformance(f"127.0.0.1:{port}", ConformanceOptions(only=names, timeout_s=60))
    finally:
        server.stop(grace=0)
    return {r.name: r for r in report.results}


def test_conformance_skips_the_input_check_on_a_server_without_inspect_input_and_says_why():
    import broken_templates

    class NoInspection(broken_templates.TemplateModel):
        inspects_input = False

    skipped = _conformance(NoInspection(), "input")["input"]
    assert skipped.status == "skip", skipped
    assert "cannot answer InspectInput" in skipped.detail and f"sdk_version {ctbench.__version__}" in skipped.detail
    assert f"server {NoInspection.name!r}" in skipped.detail


def test_conformance_warns_once_about_a_server_newer_than_it(monkeypatch):
    import broken_templates

    import ctbench

    monkeypatch.setattr(ctbench, "__version__", "99.0.0")  # what the server fills into its card
    described = _conformance(broken_templates.TemplateModel(), "describe")["describe"]
    assert described.status == "pass", described
    assert [w for w in described.warnings if "newer than this runner" in w and "sdk_version 99.0.0" in w] == described.warnings
    assert len(described.warnings) == 1
