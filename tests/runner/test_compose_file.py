"""The compose-file reader: a missing or malformed file is a `ComposeFileError` naming the file,
and the line or service where it knows one."""
from __future__ import annotations

import pytest

from ctbench.errors import ComposeFileError, DatasetError
from ctbench.runners.compose_file import load_compose_file


def test_missing_file_names_it(tmp_path):
    with pytest.raises(ComposeFileError, match=r"nope.yaml: server registry not found"):
        load_compose_file(tmp_path / "nope.yaml")


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  chance:\n    x-ctbench: {model: chance\n")
    with pytest.raises(ComposeFileError, match=r"compose.yaml:\d+: malformed YAML") as info:
        load_compose_file(path)
    assert info.value.path == path and info.value.line is not None
    assert not isinstance(info.value, DatasetError), "a compose file is not a dataset"


@pytest.mark.parametrize(("text", "message"), [
    ("- a\n- b\n", r"compose.yaml: expected a mapping with 'services', got list"),
    ("services: [chance]\n", r"compose.yaml: 'services' must be a mapping, got list"),
    ("services:\n  chance: 3\n", r"compose.yaml: service 'chance': expected a mapping, got int"),
    ("services:\n  chance:\n    x-ctbench: [chance]\n", r"compose.yaml: service 'chance': 'x-ctbench' must be a mapping"),
])
def test_a_bad_shape_names_the_file_and_service(tmp_path, text, message):
    path = tmp_path / "compose.yaml"
    path.write_text(text)
    with pytest.raises(ComposeFileError, match=message):
        load_compose_file(path)


def test_services_without_a_model_are_infrastructure(tmp_path):
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  proxy: {image: x}\n  chance:\n    x-ctbench: {model: chance, args: [--option, seed=1]}\n")
    specs = load_compose_file(path)
    assert list(specs) == ["chance"] and specs["chance"].args == ("--option", "seed=1")
