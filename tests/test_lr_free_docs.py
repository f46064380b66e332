"""docs/learning-rate-free.md's and BENCHMARKS.md's tables of the learning-rate-free
benchmark are the committed results files' summaries (bench/lr_free.py --fill-docs), not
numbers typed in: a change to either side without the other fails here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
lr_free = pytest.importorskip("lr_free")


@pytest.fixture(scope="module")
def results():
    return lr_free.doc_results()


def test_the_guide_holds_the_results_files_tables(results):
    main, confirm = results
    text = lr_free.DOC_PATH.read_text()
    assert lr_free.fill_docs(text, main, confirm) == text, (
        "docs/learning-rate-free.md is out of date: run bench/lr_free.py --fill-docs")


def test_benchmarks_holds_the_results_files_report(results):
    main, _ = results
    text = lr_free.BENCHMARKS_PATH.read_text()
    assert lr_free.fill_benchmarks(text, main) == text, (
        "BENCHMARKS.md section 9 is out of date: run bench/lr_free.py --fill-docs")


def test_the_recommendation_is_measured_on_every_workload(results):
    main, _ = results
    measured = {r["workload"] for r in main["runs"] if r["optimizer"] == "descend:recommended"}
    assert measured == set(lr_free.WORKLOADS)


def test_a_changed_number_is_caught(results):
    main, confirm = results
    text = lr_free.DOC_PATH.read_text()
    start = text.index("<!-- overview -->")
    digit = next(i for i in range(start, len(text)) if text[i].isdigit())
    changed = text[:digit] + str((int(text[digit]) + 1) % 10) + text[digit + 1:]
    assert lr_free.fill_docs(changed, main, confirm) != changed
