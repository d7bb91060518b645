"""`bench data ...`: build, fetch and check datasets."""
from __future__ import annotations

import click

from ctbench.cli.data_synth import synth


@click.group()
def data() -> None:
    """Datasets: the phantom benchmark, CT-SpatialVQA, CT-RATE volumes, QA pipelines."""


data.add_command(synth)
