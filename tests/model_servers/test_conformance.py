"""`bench conformance` passes against the real MedGemma and Lingshu servers (tiny random weights,
16 slices of 32x32, 8 new tokens, CPU), served on loopback with a data root. Sixteen slices, not
the 4 of the other tiny-weight tests: the `input` check needs slices through the probe's markers.

Random weights answer gibberish (the tiny MedGemma even answers the same text for every volume),
so the orientation check can only show consistency; `test_orientation_probe_reaches_the_model_
as_identical_slices` checks the property it relies on where the text cannot: the three storage
orders of the probe become the very same slice stack before the model sees them.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ctbench.conformance import CHECKS, ConformanceOptions, run_conformance
from ctbench.model_servers.registry import get_model_class
from ctbench.model_servers.vlm_common.loopback import TINY_OPTIONS, serving

MODELS = ["medgemma", "lingshu"]
CONFORMANCE_OPTIONS = {**TINY_OPTIONS, "num_slices": "16"}


def make(name: str, weights):
    return get_model_class(name)(**{**CONFORMANCE_OPTIONS, "weights": str(weights[name])})


@pytest.mark.parametrize("name", MODELS)
def test_server_passes_every_conformance_check(name, tiny_weights, tmp_path):
    data_root = tmp_path / "data"
    data_root.mkdir()
    with serving(make(name, tiny_weights), data_root) as (address, _):
        report = run_conformance(address, ConformanceOptions(data_root=data_root, timeout_s=60))
    assert report.passed, report.to_text()
    assert {r.name: r.status for r in report.results} == dict.fromkeys(CHECKS, "pass"), report.to_text()
    assert report.model["name"] == name
    fed = {r.name: r for r in report.results}["input"]
    assert "[16, 32, 32, 3] uint8" in fed.detail and "for LPS/RAS/ASL/IRP" in fed.detail, fed.detail
    assert not list(data_root.iterdir()), "probe volumes are cleaned up"


@pytest.mark.parametrize("name", MODELS)
def test_orientation_probe_reaches_the_model_as_identical_slices(name, tiny_weights):
    from ctbench.conformance import probe_volumes as probes
    from ctbench.preprocess.volume import load_volume_bytes

    model = make(name, tiny_weights)  # preprocessing needs no weights loaded
    for side in ("left", "right"):
        stacks = [model.preprocess(load_volume_bytes(p.data, p.filename)).images
                  for p in probes.orientation_storages(side)]
        assert stacks[0].std() > 0  # the slices show the chest, not a blank
        for stack in stacks[1:]:
            np.testing.assert_array_equal(stack, stacks[0])


def test_bench_conformance_cli_passes_against_lingshu_served_by_bench_serve(tiny_weights, tmp_path):
    """The user's path: `bench serve lingshu` as its own process, then `bench conformance`."""
    from ctbench.cli import main
    from ctbench.runners.backends.base import ServerSpec
    from ctbench.runners.backends.local import LocalProcessBackend
    from ctbench.runners.health import wait_until_serving

    data_root = tmp_path / "data"
    data_root.mkdir()
    options = {**CONFORMANCE_OPTIONS, "weights": str(tiny_weights["lingshu"])}
    args = tuple(a for key, value in options.items() for a in ("--option", f"{key}={value}"))
    out = tmp_path / "conformance.json"
    with LocalProcessBackend(start_timeout_s=60) as backend:
        endpoint = backend.start(ServerSpec(name="lingshu", model="lingshu", args=args), data_root, tmp_path / "logs")
        wait_until_serving(endpoint.address, 60, "lingshu", lambda: backend.is_alive("lingshu"),
                           lambda: backend.logs("lingshu"))
        result = CliRunner().invoke(main, ["conformance", endpoint.address, "--data-root", str(data_root),
                                           "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "CONFORMS: 11 passed, 0 failed, 0 skipped" in result.output
    doc = json.loads(out.read_text())
    assert doc["passed"] is True and doc["model"]["name"] == "lingshu"
