from __future__ import annotations

import sys

from click.testing import CliRunner

from ctbench.cli import main


def test_a_command_whose_optional_part_is_missing_says_which_extra_to_install(tmp_path, monkeypatch):
    # scripts/setup.sh installs no extras; `bench models fetch` needs the hub client.
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    res = CliRunner().invoke(main, ["models", "fetch", "medgemma", "--weights-dir", str(tmp_path / "w")])
    assert res.exit_code == 1, res.output
    assert "Error:" in res.output and "ctbench[hub]" in res.output
    assert "Traceback" not in res.output
