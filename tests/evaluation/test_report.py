from __future__ import annotations

import pytest

pytest.importorskip("matplotlib", reason="needs matplotlib: pip install -e .[test]")
pytest.importorskip("openai", reason="needs openai: pip install -e .[test]")
from click.testing import CliRunner

from ctbench.cli import main
from ctbench.evaluation import score_run
from ctbench.evaluation.judges import JudgeSpec, LLMJudge, judge_run, load_prompt
from ctbench.evaluation.judges.fake import judge_responder
from ctbench.evaluation.report import write_report
from ctbench.llm.testing import FakeLLMServer


def test_report_is_self_contained_with_all_figures(small_run, tmp_path):
    with FakeLLMServer(judge_responder) as server:
        judges = [LLMJudge.create(JudgeSpec(n, "openai", "m", server.openai_base_url), load_prompt(),
                                  cache_path=tmp_path / "c.sqlite") for n in ("a", "b", "c")]
        judge_run(small_run, judges)
    files = write_report(score_run(small_run, text_metrics=["rouge", "alignscore"]), tmp_path / "rep")
    names = sorted(f.name for f in files.figures)
    assert names == ["answer_lengths.png", "categories.png", "correctness_heatmap.png",
                     "judge_agreement.png", "leaderboard.png"]
    page = files.html.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 5 and "src='report" not in page
    md = files.markdown.read_text(encoding="utf-8")
    assert "## Leaderboard" in md and "LLM jury" in md and "alignscore: unavailable" in md


def test_bench_report_cli(small_run):
    res = CliRunner().invoke(main, ["report", str(small_run)])
    assert res.exit_code == 0, res.output
    assert (small_run / "report" / "report.html").is_file()
    assert (small_run / "report" / "leaderboard.png").is_file()


def test_every_command_of_mine_has_help_with_an_example():
    for cmd in ("score", "report"):
        res = CliRunner().invoke(main, [cmd, "--help"])
        assert res.exit_code == 0 and "Example" in res.output
