"""Long scoring steps report progress: `bench score` shows bars instead of minutes of silence."""
from __future__ import annotations

import numpy as np

from ctbench.evaluation.embeddings import SentenceEncoder
from ctbench.evaluation.progress import report, reporting_to


class _FakeModel:
    def encode(self, texts, **_):
        return np.ones((len(texts), 4), np.float32) / 2


def test_encoding_reports_progress_in_steps_until_done():
    events = []
    encoder = SentenceEncoder(batch_size=2, cache=False, model=_FakeModel())
    with reporting_to(lambda label, done, total: events.append((label, done, total))):
        encoder.encode([f"text {i}" for i in range(40)])
    assert [e[0] for e in events] == ["sbert encoding"] * len(events) and len(events) == 3
    assert events[-1][1:] == (40, 40) and [e[1] for e in events] == sorted(e[1] for e in events)


def test_no_listener_no_output_and_listeners_nest():
    report("nobody listens", 1, 2)  # a library call with no listener is silent
    outer, inner = [], []
    with reporting_to(lambda *e: outer.append(e)):
        with reporting_to(lambda *e: inner.append(e)):
            report("step", 1, 1)
        report("step", 2, 2)
    assert inner == [("step", 1, 1)] and outer == [("step", 2, 2)]
