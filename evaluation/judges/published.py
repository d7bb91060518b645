"""The published CT-SpatialVQA harness's judging protocol, read from its protocol file.

`protocol/published-judging.json` in the shared ct-spatialvqa folder describes exactly how the
paper asked its three judges (prompt, item format, batch size, system message, temperature,
max tokens, retries, what a failed batch records). ctbench does not ship that text: the
harness publishes no licence, so it is read from the shared folder ($CTBENCH_SHARED or
`../shared`, as for the reference runs) or from a path given with `--prompt FILE.json`.

The reading of the file, where it leaves room: items are numbered from `offset_starts_at`
within each batch; a judge not named in the file takes the settings of the file's judge on the
same API (OpenAI-compatible: gpt-4o's; Gemini: gemini-2.5-flash's); "API default (not set)"
is not sent; the published calls asked for no JSON mode, so neither does this protocol.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctbench.errors import DatasetError
from ctbench.evaluation.judges.verdict_parsing import parse_verdicts
from ctbench.llm.errors import UnusableReply

PROTOCOL_FILE = Path("protocol") / "published-judging.json"
_REQUIRED = ("prompt_template", "item_format", "item_separator", "offset_starts_at", "batch_size", "judges")
_JITTER = re.compile(r"uniform\(\s*0\s*,\s*([0-9.]+)\s*\*\s*backoff\s*\)")
#: The failure labels the published harness wrote into 'reasoning'.
REQUEST_ERROR, BLOCKED_OR_EMPTY, PARSE_ERROR = "REQUEST_ERROR", "BLOCKED_OR_EMPTY_RESPONSE", "PARSE_ERROR"


@dataclass(frozen=True)
class PublishedJudging:
    """The protocol as data; the same interface as `JudgePrompt`."""

    source: Path
    template: str
    item_format: str
    item_separator: str
    offset_start: int
    batch_size: int
    judges: dict[str, dict[str, Any]]
    retries: dict[str, Any]
    sha256: str
    name: str = "published"
    sends_empty_predictions: bool = True  # the published harness sent every prediction, empty ones too

    def request(self, judge: str, backend: str, items: Sequence[dict]) -> tuple[str, str]:
        lines = [self.item_format.format(offset=self.offset_start + k, question=it["question"], answer=it["answer"],
                                         prediction=it["prediction"]) for k, it in enumerate(items)]
        return self.judge_entry(judge, backend).get("system_message") or "", \
            self.template.replace("{batch}", self.item_separator.join(lines))

    def judge_entry(self, judge: str, backend: str) -> dict[str, Any]:
        """The file's settings for this judge: by name, else the first judge on the same API."""
        if judge in self.judges:
            return self.judges[judge]
        api_word = "google" if backend == "gemini" else "openai"
        for entry in self.judges.values():
            if api_word in str(entry.get("api", "")).lower():
                return entry
        raise DatasetError(f"the published judging protocol names no judge on the {backend} API", self.source)

    def settings(self, judge: str, backend: str) -> dict[str, Any]:
        entry = self.judge_entry(judge, backend)
        out: dict[str, Any] = {"json_mode": False,
                               "temperature": _number(entry.get("temperature")),
                               "max_output_tokens": _number(entry.get("max_tokens", entry.get("max_output_tokens")))}
        if self.retries:
            out |= {"max_retries": int(self.retries["max_retries"]), "backoff_s": float(self.retries["initial_backoff_s"]),
                    "max_backoff_s": float(self.retries["max_backoff_s"]), "backoff_jitter": _jitter(self)}
        return out

    def parse(self, text: str, n: int) -> dict[int, tuple[bool | None, str, str]]:
        parsed = parse_verdicts(text, n, id_key="index", first=self.offset_start, rescue=False)
        if all(v is None and "unparseable reply" in failure for v, _, failure in parsed.values()):
            label = f"{PARSE_ERROR}: {text.strip()[:200]}"
            return dict.fromkeys(range(n), (None, label, label))
        return parsed

    def call_failure(self, error: Exception) -> tuple[str, str]:
        label = BLOCKED_OR_EMPTY if isinstance(error, UnusableReply) else f"{REQUEST_ERROR}: {error}"
        return label, label


def _number(value: Any) -> float | int | None:
    """A setting's value; the file's 'API default (not set)' (any text) is not sent."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _jitter(protocol: PublishedJudging) -> float:
    text = str(protocol.retries.get("jitter", ""))
    m = _JITTER.fullmatch(text.strip())
    if m is None or float(protocol.retries.get("multiplier", 2.0)) != 2.0:
        raise DatasetError(f"unsupported retry schedule in the published judging protocol: multiplier "
                           f"{protocol.retries.get('multiplier')!r}, jitter {text!r} (the client doubles the delay "
                           "and adds uniform(0, f * backoff))", protocol.source)
    return float(m.group(1))


def locate_published_judging() -> Path:
    from ctbench.evaluation.reference import locate_reference

    root = locate_reference()
    path = root / PROTOCOL_FILE if root is not None else None
    if path is None or not path.is_file():
        raise DatasetError("the published judging protocol was not found: expected ct-spatialvqa/"
                           f"{PROTOCOL_FILE} in $CTBENCH_SHARED or ../shared/data (or give --prompt FILE.json)", path)
    return path


def load_published_judging(path: str | Path | None = None) -> PublishedJudging:
    source = Path(path) if path is not None else locate_published_judging()
    raw = source.read_bytes()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"the published judging protocol is not JSON: {exc}", source) from exc
    missing = [k for k in _REQUIRED if k not in data] if isinstance(data, dict) else list(_REQUIRED)
    if missing:
        raise DatasetError(f"the published judging protocol lacks {', '.join(missing)}", source)
    if "{batch}" not in data["prompt_template"]:
        raise DatasetError("the published prompt_template has no {batch} placeholder", source)
    protocol = PublishedJudging(source, data["prompt_template"], data["item_format"], data["item_separator"],
                                int(data["offset_starts_at"]), int(data["batch_size"]), dict(data["judges"]),
                                dict(data.get("retries") or {}), hashlib.sha256(raw).hexdigest())
    if protocol.retries:
        _jitter(protocol)  # refuse a schedule the client cannot follow now, not mid-run
    return protocol
