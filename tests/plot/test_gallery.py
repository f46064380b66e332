"""docs/see-the-method.md's pictures are what its code makes now (docs/make_gallery.py)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("matplotlib")


def gallery():
    name = "descend_docs_make_gallery"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "make_gallery.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_the_gallery_is_current():
    module = gallery()
    assert module.stale() == [], "docs are stale: run python docs/make_gallery.py"
    page = (ROOT / "docs" / "see-the-method.md").read_text()
    for target in re.findall(r"\]\(([^)]+)\)", page):
        assert (ROOT / "docs" / target).is_file(), target


def test_check_names_a_changed_number_a_missing_node_and_a_broken_png(tmp_path, monkeypatch):
    module = gallery()
    entry = next(e for e in module.ENTRIES if e.name == "mlp-graph")
    # what the entry makes is the committed files (test_the_gallery_is_current): take them
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for produced, place in entry.files.items():
        (fresh / produced).write_bytes((ROOT / "docs" / place).read_bytes())

    def make(folder):
        for produced in entry.files:
            (folder / produced).write_bytes((fresh / produced).read_bytes())

    entry = module.Entry(entry.name, make, entry.files)
    svg = (fresh / "mlp-graph.svg").read_text()
    original = module.facts(fresh / "mlp-graph.svg")
    value = re.search(r"value = ([-\d.]+)</text>", svg)
    edits = [svg.replace(value.group(0), f"value = {float(value.group(1)) * 1.01:.4g}</text>"),
             svg.replace('id="node-1"', 'id="other"'),
             svg.replace(">tanh<", ">relu<")]
    for i, text in enumerate(edits):
        (tmp_path / f"{i}.svg").write_text(text)
        assert not module.same_facts(original, module.facts(tmp_path / f"{i}.svg")), i
    assert module.facts(fresh / "mlp-graph.png")[0] == "png"
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert not module.same_facts(module.facts(fresh / "mlp-graph.png"),
                                 module.facts(tmp_path / "broken.png"))
    # the whole check names the stale file, and --check exits 1
    docs = tmp_path / "docs"
    for produced, place in entry.files.items():
        (docs / place).parent.mkdir(parents=True, exist_ok=True)
        (docs / place).write_bytes((fresh / produced).read_bytes())
    (docs / "img" / "mlp-graph.svg").write_text(edits[0])
    monkeypatch.setattr(module, "DOCS", docs)
    monkeypatch.setattr(module, "ENTRIES", [entry])
    assert module.main(["--check"]) == 1
