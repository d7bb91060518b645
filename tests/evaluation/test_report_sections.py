"""`bench report`: every section a paper's reader expects, from a real phantom run and from a
hand-written run with failures (the HTML is parsed, not grepped)."""
from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from ctbench.evaluation import report as report_module
from ctbench.evaluation import score_run
from ctbench.evaluation.examples import examples_per_category, most_disputed
from ctbench.evaluation.report import Section, write_report

EVERY_SECTION = ["How to read this report", "Run", "Servers and model cards", "Leaderboard", "Per spatial category",
                 "Per question type", "Paired comparisons", "Example questions", "Where the models disagree most",
                 "Error analysis", "Run attempts", "How the intervals are computed"]


class ReportPage(HTMLParser):
    """Section titles, and per section its paragraphs and tables (rows of cell texts)."""

    def __init__(self, text: str):
        super().__init__()
        self.sections: dict[str, dict] = {}
        self._current: dict | None = None
        self._tag: str | None = None
        self._buf: list[str] = []
        self._row: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag in ("h2", "p", "td", "th"):
            self._tag, self._buf = tag, []
        elif tag == "table" and self._current is not None:
            self._current["tables"].append([])
        elif tag == "tr":
            self._row = []
        elif tag == "img" and self._current is not None:
            self._current["figures"].append(dict(attrs).get("alt"))

    def handle_data(self, data):
        if self._tag:
            self._buf.append(data)

    def handle_endtag(self, tag):
        text = "".join(self._buf).strip()
        if tag == "h2":
            self._current = self.sections.setdefault(text, {"paragraphs": [], "tables": [], "figures": []})
        elif tag == "p" and self._current is not None and self._tag == "p":
            self._current["paragraphs"].append(text)
        elif tag in ("td", "th") and self._row is not None:
            self._row.append(text)
        elif tag == "tr" and self._current is not None and self._row is not None:
            self._current["tables"][-1].append(self._row)
            self._row = None
        if tag == self._tag:
            self._tag = None


def page_of(files) -> ReportPage:
    return ReportPage(files.html.read_text(encoding="utf-8"))


def column(table: list[list[str]], header: str) -> list[str]:
    k = table[0].index(header)
    return [row[k] for row in table[1:]]


@pytest.fixture(scope="module")
def phantom_report(tmp_path_factory):
    from ctbench.runners.run import RunConfig, run_benchmark

    out = tmp_path_factory.mktemp("run")
    run_benchmark(RunConfig(out_dir=out, servers="chance,blind,geometric", backend="local", phantom_volumes=4))
    result = score_run(out)
    return out, result, write_report(result, out / "report")


@pytest.mark.slow
def test_the_report_of_a_phantom_run_has_every_section(phantom_report):
    out, result, files = phantom_report
    page = page_of(files)
    assert [t for t in page.sections if t in EVERY_SECTION] == EVERY_SECTION
    record = json.loads((out / "run.json").read_text())
    run_rows = dict(page.sections["Run"]["tables"][0][1:])
    assert run_rows["dataset sha256"] == record["dataset"]["sha256"]
    assert run_rows["questions / volumes"] == "40 / 4"
    cards = page.sections["Servers and model cards"]["tables"][0]
    assert sorted(column(cards, "server")) == ["blind", "chance", "geometric"]
    assert all(column(cards, "description"))
    examples = page.sections["Example questions"]["tables"][0]
    assert examples[0][-3:] == result.servers and len(examples) - 1 == 2 * 6  # two per category, six categories
    assert all(cell[:1] in "✓✗" for row in examples[1:] for cell in row[-3:])
    types = page.sections["Per question type"]["tables"][0]
    assert column(types, "question type")[-1] == "all questions" and len(types) - 2 == 7
    assert "leaderboard" in page.sections["Leaderboard"]["figures"]
    assert "categories" in page.sections["Per spatial category"]["figures"]


@pytest.mark.slow
def test_every_figure_is_a_percentage_with_its_interval(phantom_report):
    _, _result, files = phantom_report
    page = page_of(files)
    board = page.sections["Leaderboard"]["tables"][0]
    for cell in column(board, "accuracy % [95% CI]"):
        value, low, high = (float(x) for x in cell.replace("[", "").replace("]", "").replace(",", "").split())
        assert 0 <= low <= value <= high <= 100
    categories = page.sections["Per spatial category"]["tables"][0]
    assert all("[" in cell for row in categories[1:] for cell in row[3:])


@pytest.mark.slow
def test_an_all_correct_interval_is_explained_where_it_appears(phantom_report):
    _, result, files = phantom_report
    geometric = result.overall("geometric")
    assert geometric["value"] == 1.0  # the geometric baseline answers the phantom from the image
    text = " ".join(page_of(files).sections["Leaderboard"]["paragraphs"])
    n, g = geometric["n"], geometric["n_volumes"]
    assert f"geometric: {n}/{n} correct on {g} volumes" in text and f"that of {g}/{g}" in text


def test_categories_that_overlap_are_said_to_overlap(small_run, kit):
    rows = [json.loads(line) for line in (small_run / "dataset.jsonl").read_text().splitlines()]
    rows[0]["categories"] = ["Laterality & Bilateral Symmetry", "Adjacency & Containment"]
    (small_run / "dataset.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    files = write_report(score_run(small_run), small_run / "report")
    note = " ".join(page_of(files).sections["Per spatial category"]["paragraphs"])
    assert "Categories overlap: 1 of 5 questions carry more than one category" in note
    assert "1 carry none" in note and "below" in note


def test_error_analysis_counts_each_outcome_and_quotes_messages(small_run):
    files = write_report(score_run(small_run), small_run / "report")
    section = page_of(files).sections["Error analysis"]
    counts = {row[0]: dict(zip(section["tables"][0][0][1:], row[1:])) for row in section["tables"][0][1:]}
    assert counts["InvalidVolume"] == {"good": "0", "flaky": "1"}
    assert counts["missing (never answered)"]["flaky"] == "2"
    assert counts["answered, but picked no single option"]["flaky"] == "1"  # "left and right"
    assert counts["ok"] == {"good": "5", "flaky": "1"}
    samples = section["tables"][1]
    invalid = next(row for row in samples[1:] if row[1] == "InvalidVolume")
    assert invalid[0] == "flaky" and invalid[3] == "v1::1" and "boom" in invalid[4]
    md = files.markdown.read_text(encoding="utf-8")
    assert "## Error analysis" in md and "boom" in md


def test_examples_are_seeded_and_show_every_servers_answer(small_run):
    result = score_run(small_run)
    first = examples_per_category(result, "accuracy", seed=3)
    assert [e.question_id for e in first] == [e.question_id for e in examples_per_category(result, "accuracy", seed=3)]
    assert all(set(e.answers) == {"good", "flaky"} for e in first)
    files = write_report(result, small_run / "report")
    table = page_of(files).sections["Example questions"]["tables"][0]
    flaky = column(table, "flaky")
    assert any(cell.startswith("✗ (missing)") for cell in flaky) or any("error" in cell for cell in flaky)


def test_the_most_disputed_questions_are_those_the_servers_split_on(small_run):
    result = score_run(small_run)
    disputed = most_disputed(result, "accuracy")
    correct = result.headline["accuracy"]
    split_ids = {q for q in correct["good"] if correct["good"][q] != correct["flaky"][q]}
    assert disputed and {e.question_id for e in disputed} == split_ids


def test_a_section_is_added_with_one_line(small_run, monkeypatch):
    def extra_section(inp):
        return Section("Volume controls", [f"{len(inp.result.servers)} servers"])

    monkeypatch.setattr(report_module, "SECTIONS", [*report_module.SECTIONS, extra_section])
    files = write_report(score_run(small_run), small_run / "report")
    assert page_of(files).sections["Volume controls"]["paragraphs"] == ["2 servers"]
    assert "## Volume controls\n\n2 servers" in files.markdown.read_text(encoding="utf-8")


def test_a_jury_that_mixes_two_prompts_is_flagged(small_run):
    (small_run / "judges").mkdir()
    ids = ["v1::0", "v1::1", "v2::0", "v2::1", "v3::0"]
    for judge in ("ja", "jb"):
        rows = [{"question_id": q, "is_correct": True, "prompt": "published" if judge == "ja" or k < 2 else "v1",
                 "prompt_sha256": "x"} for k, q in enumerate(ids)]
        (small_run / "judges" / f"good.{judge}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    files = write_report(score_run(small_run), small_run / "report")
    section = page_of(files).sections["LLM jury and judge agreement"]
    assert column(section["tables"][0], "judge prompts") == ["ja: published; jb: published, v1"]
    assert any("more than one prompt are mixed in: good / jb" in p for p in section["paragraphs"])
