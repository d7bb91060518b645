"""What `bench run` checks before it streams, and which questions it then asks.

Cheap checks only: the dataset validates, every volume the run needs exists and can be opened,
and (once a server is up) its `Describe` names the server that was asked for. Problems are
reported in one screen and stop the run, unless `--skip-missing-volumes` asks for the questions
whose volumes can be read. `--limit N` keeps the first N volumes' questions, in dataset order.
A run on fewer questions than its dataset records what it left out (`Selection.to_json`), and
scoring labels its tables with `Selection.label`.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

from ctbench.datasets.qa_items import Dataset
from ctbench.errors import PreflightError, WrongServer
from ctbench.runners.backends.base import ServerSpec

SHOWN = 5  # paths listed per problem: one screen, however large the dataset


@dataclass
class VolumeProblems:
    """Volumes (image paths, dataset order) the runner cannot read, and why."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (image path, why)

    @property
    def bad(self) -> set[str]:
        return set(self.missing) | {path for path, _ in self.unreadable}


@dataclass
class Selection:
    """The questions a run asks: all of its dataset, or a recorded, labelled subset."""

    dataset: Dataset  # the questions asked (RUN/dataset.jsonl)
    of_questions: int  # questions in the dataset as given
    of_volumes: int
    limit: int | None = None
    left_out_volumes: list[str] = field(default_factory=list)  # unreadable volumes skipped
    left_out_questions: int = 0  # their questions

    @property
    def is_subset(self) -> bool:
        return len(self.dataset.items) < self.of_questions

    @property
    def label(self) -> str:
        return f"subset: {len(self.dataset.items)} of {self.of_questions} questions"

    def notes(self) -> list[str]:
        lines = []
        if self.left_out_volumes:
            lines.append(f"--skip-missing-volumes: left out {len(self.left_out_volumes)} of {self.of_volumes} volumes "
                         f"({self.left_out_questions} questions) that cannot be read, first: "
                         f"{', '.join(self.left_out_volumes[:SHOWN])}")
        if self.limit is not None:
            lines.append(f"--limit {self.limit}: the first {self.limit} volumes' questions")
        if self.is_subset:
            lines.append(f"{self.label} (scores are on this subset)")
        return lines

    def to_json(self) -> dict | None:
        if not self.is_subset:
            return None
        return {
            "label": self.label,
            "questions": len(self.dataset.items),
            "of_questions": self.of_questions,
            "volumes": len(self.dataset.by_volume()),
            "of_volumes": self.of_volumes,
            "limit": self.limit,
            "skipped_unreadable_volumes": len(self.left_out_volumes),
            "skipped_questions": self.left_out_questions,
            "skipped_examples": self.left_out_volumes[:SHOWN],
        }


def volume_problem(path: Path) -> str | None:
    """None if `path` is a regular file the runner can open, else what is wrong ("missing", ...)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as exc:  # permission denied, a symlink loop, a name too long, ...
        return exc.strerror or type(exc).__name__
    except ValueError:
        return "the path contains a NUL byte"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "not a regular file"
    finally:
        os.close(fd)
    return None


def check_volumes(dataset: Dataset, image_paths: list[str]) -> VolumeProblems:
    problems = VolumeProblems(checked=len(image_paths))
    for image_path in image_paths:
        why = volume_problem(dataset.volume_path(image_path))
        if why == "missing":
            problems.missing.append(image_path)
        elif why is not None:
            problems.unreadable.append((image_path, why))
    return problems


def check_dataset(dataset: Dataset) -> None:
    """The dataset's own checks (empty questions or answers, unknown categories). Duplicate
    questions are the dataset builder's concern (`bench data ... validate`), not a reason to stop."""
    from ctbench.datasets.ct_spatialvqa import validate_dataset

    _, report = validate_dataset(dataset, duplicates="warn")
    if report.errors:
        shown = "\n  ".join(report.errors[:SHOWN])
        more = f"\n  ... and {len(report.errors) - SHOWN} more" if len(report.errors) > SHOWN else ""
        raise PreflightError(f"{dataset.source}: the dataset does not validate ({len(report.errors)} problems):\n  {shown}{more}")


def select_questions(dataset: Dataset, limit: int | None = None, skip_missing: bool = False) -> Selection:
    """Check the dataset and its volumes; return the questions to ask, or raise `PreflightError`
    with a one-screen report of what is wrong."""
    if limit is not None and limit < 1:
        raise PreflightError(f"--limit must be at least 1, got {limit}")
    check_dataset(dataset)
    volumes = list(dataset.by_volume())
    wanted = volumes if skip_missing else volumes[:limit]
    problems = check_volumes(dataset, wanted)
    if problems.bad and not skip_missing:
        raise PreflightError(_report(dataset, problems, len(dataset.items)))
    keep: list[str] = []
    left_out: list[str] = []  # unreadable volumes passed over to take the volumes kept
    for path in wanted:
        if limit is not None and len(keep) == limit:
            break
        (left_out if path in problems.bad else keep).append(path)
    if not keep:
        raise PreflightError(_report(dataset, problems, len(dataset.items), "no volume left to run"))
    kept = set(keep)
    subset = replace(dataset, items=[item for item in dataset.items if item.image_path in kept])
    by_volume = dataset.by_volume()
    return Selection(subset, len(dataset.items), len(volumes), limit, left_out, sum(len(by_volume[p]) for p in left_out))


def _report(dataset: Dataset, problems: VolumeProblems, n_questions: int, verdict: str = "") -> str:
    by_volume = dataset.by_volume()
    bad = problems.bad
    affected = sum(len(by_volume[path]) for path in bad)
    lines = [f"{len(bad)} of {problems.checked} volumes cannot be read "
             f"({affected} of {n_questions} questions), under data root {dataset.data_root}:"]
    if problems.missing:
        shown = [str(dataset.volume_path(p)) for p in problems.missing[:SHOWN]]
        lines.append(f"  missing ({len(problems.missing)}): " + ", ".join(shown)
                     + (" ..." if len(problems.missing) > SHOWN else ""))
    if problems.unreadable:
        shown = [f"{dataset.volume_path(p)} ({why})" for p, why in problems.unreadable[:SHOWN]]
        lines.append(f"  unreadable ({len(problems.unreadable)}): " + ", ".join(shown)
                     + (" ..." if len(problems.unreadable) > SHOWN else ""))
    lines.append(verdict or "nothing was streamed; fix --data-root, or pass --skip-missing-volumes "
                            "to run only the questions whose volumes can be read")
    return "\n".join(lines)


def expected_model(spec: ServerSpec) -> str | None:
    """The model name the server's card must carry; None when the registry names a model by
    import path ("module:Class") and the runner cannot know its card name without importing it."""
    return None if ":" in spec.model else spec.model


def check_identity(spec: ServerSpec, address: str, card: dict) -> None:
    """Refuse a server whose card names another model: never score a stranger on the port."""
    expected = expected_model(spec)
    answered = card.get("name", "")
    if expected is not None and answered != expected:
        raise WrongServer(
            f"{address} answers as {answered or '(no name)'!r}, not {expected!r}: another server holds that "
            f"port; nothing was asked of it for {spec.name!r}"
        )
