"""`bench perf rehearsal`: a tiny rehearsal (small volumes, N = 1 and 2) through real `bench run`
processes and real servers, for the plumbing; and the goal checks on figures made by hand."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ctbench.cli import main as bench
from ctbench.runners.perf_rehearsal import RunFigures, ServerFigures, check_goals
from ctbench.runners.rehearsal_volumes import RehearsalVolumes


@pytest.mark.slow
def test_a_tiny_rehearsal_runs_every_server_and_transport_and_checks_the_goals(tmp_path):
    out = tmp_path / "rehearsal.json"
    result = CliRunner().invoke(bench, [
        "perf", "rehearsal", "--volumes", "1,2", "--size", "small", "--servers", "chance,geometric",
        "--transports", "reference,inline", "--workdir", str(tmp_path), "--out", str(out),
    ])
    assert out.is_file(), result.output
    figures = json.loads(out.read_text())
    assert [(r["volumes"], r["transport"]) for r in figures["runs"]] == [(1, "reference"), (1, "inline"), (2, "reference"), (2, "inline")]
    for run in figures["runs"]:
        assert run["failure"] == "" and run["runner_peak_rss_mb"] > 0
        assert set(run["servers"]) == {"chance", "geometric"}
        for server in run["servers"].values():
            assert server["questions"] == figures["questions"][str(run["volumes"])] >= 10 * run["volumes"]
            assert server["answered"] + server["errors"] == server["questions"] and server["missing"] == 0
            assert server["peak_rss_mb"] > 0
            assert set(server["error_types"]) <= {"UnsupportedQuestion"}  # open questions only
    goals = [g["goal"] for g in figures["goals"]]
    assert len(goals) == 5 and goals[0].startswith("nothing lost")
    assert "PASS: nothing lost" in result.output and "| 2 | inline | geometric |" in result.output
    assert list(tmp_path.iterdir()) == [out]  # volumes and run folders are gone


def _run(n: int, rss: float, wall: float, missing: int = 0) -> RunFigures:
    server = ServerFigures("geometric", questions=10 * n, answered=10 * n - missing, missing=missing, peak_rss_mb=rss)
    return RunFigures(n, "reference", wall, 60.0, {"geometric": server})


@pytest.mark.parametrize("runs, failed", [
    ([_run(10, 500, 60), _run(50, 510, 220), _run(200, 560, 820)], []),
    ([_run(10, 500, 60), _run(50, 510, 220), _run(200, 700, 820)], ["peak RSS flat in N"]),
    ([_run(10, 500, 60), _run(50, 510, 220), _run(200, 510, 1400)], ["wall time linear in N"]),
    ([_run(10, 500, 60), _run(50, 510, 220, missing=1), _run(200, 510, 820)], ["nothing lost"]),
], ids=["all hold", "memory grows", "time grows faster than N", "one question lost"])
def test_the_goals_fail_exactly_where_the_figures_miss_them(runs, failed):
    goals = check_goals(runs)
    assert sorted(g["goal"].split(" (")[0] for g in goals if not g["pass"]) == failed


def test_rehearsal_volumes_are_distinct_int16_niftis_with_published_and_phantom_questions(tmp_path):
    from ctbench.preprocess.volume import load_volume
    from ctbench.runners.rehearsal_volumes import PublishedQuestions

    published = PublishedQuestions([[{"question": "Is the heart normal?", "answer": "Yes.", "category": []}]], "test")
    volumes = RehearsalVolumes("small", published)
    paths = [volumes.write_volume(i, tmp_path) for i in range(5)]
    assert len({p.read_bytes() for p in paths}) == 5
    volume = load_volume(paths[4])
    assert volume.array.dtype.name == "int16" and volume.array.shape == (64, 96, 96)
    questions = volumes.questions(4)
    assert questions[-1]["question"] == "Is the heart normal?" and all(q["options"] for q in questions[:-1])


def test_the_local_backend_records_a_servers_usage_as_it_stops_it(tmp_path, phantom_small):
    """A server shorter-lived than the rehearsal's sampling interval is still measured: the local
    backend reads its peak RSS and CPU seconds from /proc just before stopping it."""
    from ctbench.runners.backends.base import ServerSpec
    from ctbench.runners.backends.local import LocalProcessBackend
    from ctbench.runners.process_usage import read_usage

    backend = LocalProcessBackend()
    logs = tmp_path / "logs"
    backend.start(ServerSpec(name="chance", model="chance"), phantom_small.parent, logs)
    backend.stop("chance")
    usage = read_usage(logs / "chance.usage.json")
    assert usage["peak_rss_kb"] > 1024 and usage["cpu_seconds"] > 0
