from __future__ import annotations

from click.testing import CliRunner

from ctbench.cli import main
from ctbench.evaluation import report as report_module


def _no_matplotlib():
    raise ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")


def test_report_without_matplotlib_writes_tables_and_says_how_to_get_figures(small_run, monkeypatch):
    # scripts/setup.sh installs ctbench without the [report] extra: `bench report` must still work.
    monkeypatch.setattr(report_module, "_plt", _no_matplotlib)
    res = CliRunner().invoke(main, ["report", str(small_run)])
    assert res.exit_code == 0, res.output
    md = (small_run / "report" / "report.md").read_text(encoding="utf-8")
    assert "## Leaderboard" in md
    assert "ctbench[report]" in md
    assert (small_run / "report" / "report.html").is_file()
    assert "0 figures" in res.output
