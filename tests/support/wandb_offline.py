"""Reading back an offline W&B run (`WANDB_MODE=offline`): the records of its `run-ID.wandb` file.

The file is W&B's LevelDB-style log: a 7-byte header (":W&B", magic 0xBEE1, version 0), then
32 KiB blocks of records, each `<crc32c u32><length u16><type u8>` and a chunk of one serialized
`wandb_internal_pb2.Record` (type 1 whole, 2/3/4 first/middle/last piece).
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32768
HEADER = 7


def offline_records(run_file: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    data = Path(run_file).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{run_file}: not a W&B run file")
    records, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # the rest of a block too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            pos += BLOCK - pos % BLOCK if pos % BLOCK else 0
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def offline_run(wandb_dir: Path) -> dict:
    """config, summary and artifact file names of the one offline run under `wandb_dir`."""
    (run_file,) = Path(wandb_dir).glob("wandb/offline-run-*/run-*.wandb")
    def items(entries) -> dict:
        return {entry.key or "/".join(entry.nested_key): json.loads(entry.value_json) for entry in entries}

    config, summary, artifacts, history = {}, {}, [], []
    for record in offline_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            config.update(items(record.run.config.update))
        elif kind == "config":
            config.update(items(record.config.update))
        elif kind == "summary":
            summary.update(items(record.summary.update))
        elif kind == "history":
            history.append(items(record.history.item))
        elif kind == "artifact":
            artifacts.append({"name": record.artifact.name, "type": record.artifact.type,
                              "files": [entry.path for entry in record.artifact.manifest.contents]})
    config = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in config.items()}
    return {"config": config, "summary": summary, "history": history, "artifacts": artifacts,
            "files": run_file.parent / "files"}
