"""Versioned prompt files of the QA pipeline (package data; see `ctbench.datasets.qa.prompting`)."""
