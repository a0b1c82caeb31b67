"""The row-by-row reader's type check: a value that is not of the declared type is named, never
converted."""

from __future__ import annotations

import datasets
import pytest

from pipeline.engine.reading import builder_for, type_problem

V = datasets.Value


@pytest.mark.parametrize("value, feature, problem", [
    ("yes", V("bool"), "x is str, expected bool"),
    (1, V("bool"), "x is int, expected bool"),
    (True, V("int64"), "x is bool, expected int64"),
    (1.5, V("int64"), "x is float, expected int64"),
    (2.0, V("int64"), "x is float, expected int64"),
    ("1", V("float64"), "x is str, expected float64"),
    (3, V("string"), "x is int, expected string"),
    ("a", [V("string")], "x is str, expected a list"),
    ({"role": "user", "extra": 1}, {"role": V("string")}, "x has an unexpected field 'extra'"),
])
def test_a_value_of_another_type_is_named(value, feature, problem):
    assert type_problem(value, feature, "x") == problem


@pytest.mark.parametrize("value, feature", [
    (True, V("bool")), (3, V("int64")), (3, V("float64")), (2.5, V("float32")), ("s", V("string")),
    (None, V("int64")), (["a"], [V("string")]), ({"role": "user"}, {"role": V("string")}),
])
def test_values_of_the_declared_type_pass(value, feature):
    assert type_problem(value, feature, "x") is None


@pytest.mark.parametrize("name, builder", [
    ("a.jsonl", "json"), ("a.json", "json"), ("a.csv", "csv"), ("a.parquet", "parquet"),
    ("d/a.jsonl.gz", "json"), ("a.json.zst", "json"), ("a.JSONL.BZ2", "json"), ("a.csv.xz", "csv"),
    ("d/*.jsonl*", "json"), ("d/train-*", "parquet")])
def test_the_format_is_the_suffix_before_the_compressions(name, builder):
    assert builder_for(name) == builder
