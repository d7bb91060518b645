"""What `bench conformance` found: one `CheckResult` per check, and a report that renders as
text for people and JSON for CI."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass
class CheckResult:
    name: str  # short id, e.g. "bad-items"
    title: str  # what it checks, in words
    status: str  # pass | fail | skip
    detail: str = ""  # why it failed or was skipped; what was seen when it passed
    problems: list[str] = field(default_factory=list)  # one line per thing that was wrong
    seconds: float = 0.0
    slowest_s: float = 0.0  # the slowest single answer (or InspectInput) in the check
    warnings: list[str] = field(default_factory=list)  # worth knowing, not failures (slow answers)


@dataclass
class ConformanceReport:
    address: str
    model: dict = field(default_factory=dict)  # name, version, sdk_version from Describe
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.status != FAIL for r in self.results)

    def counts(self) -> dict[str, int]:
        counts = {PASS: 0, FAIL: 0, SKIP: 0}
        for result in self.results:
            counts[result.status] += 1
        return counts

    def to_json(self) -> str:
        return json.dumps(
            {"address": self.address, "model": self.model, "passed": self.passed,
             "counts": self.counts(), "results": [asdict(r) for r in self.results]},
            indent=2,
        )

    def to_text(self) -> str:
        model = self.model.get("name") or "?"
        version = self.model.get("version") or "?"
        lines = [f"Conformance of {self.address} (model {model} {version})", ""]
        width = max((len(r.name) for r in self.results), default=0)
        for r in self.results:
            mark = {PASS: "PASS", FAIL: "FAIL", SKIP: "skip"}[r.status]
            timing = f"{r.seconds:6.2f}s" + (f" (slowest call {r.slowest_s:.2f}s)" if r.slowest_s else "")
            lines.append(f"  {mark}  {r.name.ljust(width)}  {r.title}  [{timing}]")
            if r.detail:
                lines.append(f"        {' ' * width}  {r.detail}")
            for problem in r.problems:
                lines.append(f"        {' ' * width}  - " + problem.replace("\n", f"\n        {' ' * width}      "))
            for warning in r.warnings:
                lines.append(f"        {' ' * width}  ! {warning}")
        c = self.counts()
        verdict = "CONFORMS" if self.passed else "DOES NOT CONFORM"
        lines += ["", f"{verdict}: {c[PASS]} passed, {c[FAIL]} failed, {c[SKIP]} skipped"]
        return "\n".join(lines)
