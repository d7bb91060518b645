"""The QA pipeline that builds spatial benchmarks from radiology reports.

generate (report -> QA pairs) -> filter (spatial or not) -> categorize (six spatial categories),
each step resumable and cached, with rule-based offline defaults for filter and categorize,
and `review` for a human-validation round trip.
"""
