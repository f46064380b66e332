"""docs/make_gallery_search.py --check: the gallery's numbers are those the code draws now,
and a changed number or a missing image is reported as stale."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _gallery():
    spec = importlib.util.spec_from_file_location("make_gallery_search",
                                                  DOCS / "make_gallery_search.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gallery_is_current():
    assert _gallery().main(["--check"]) == 0


def test_check_reports_a_changed_number_and_a_missing_image(tmp_path, monkeypatch, capsys):
    g = _gallery()
    facts = json.loads(g.FACTS.read_text())
    facts["backtracking"]["accepted"] = "8"
    (tmp_path / "gallery_search.json").write_text(json.dumps(facts))
    shutil.copy(g.IMG / "line_search_backtracking.png", tmp_path)
    monkeypatch.setattr(g, "FACTS", tmp_path / "gallery_search.json")
    monkeypatch.setattr(g, "IMG", tmp_path)
    monkeypatch.setattr(g, "ENTRIES", g.ENTRIES[:1])
    assert g.main(["--check"]) == 1
    assert "backtracking: its numbers changed" in capsys.readouterr().err
    (tmp_path / "line_search_backtracking.png").unlink()
    facts["backtracking"]["accepted"] = "4"
    (tmp_path / "gallery_search.json").write_text(json.dumps(facts))
    assert g.main(["--check"]) == 1
    assert "line_search_backtracking.png is missing" in capsys.readouterr().err
