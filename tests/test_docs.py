"""The documentation runs as written: README's Python blocks, and the guide's tables match
what the code gives (docs/make_figures.py --check)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, re.S)


def test_readme_python_blocks_run_as_written(tmp_path):
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 2  # the quick start and the loop at least
    if any("sklearn" in b for b in blocks):
        pytest.importorskip("sklearn")
    # one script, blocks in order (the later ones continue the earlier ones), run as a
    # reader would, in a fresh interpreter
    script = tmp_path / "readme.py"
    script.write_text("\n\n".join(blocks))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    # the loop prints lr, evaluations and status for each of ceil(1437 / 64) = 23 batches
    assert sum(1 for line in lines if "LineSearchStatus" in line or "CONVERGED" in line) >= 23
    assert float(lines[-1]) > 0.9  # the cross-validated accuracy of the last block


def _make_figures():
    name = "descend_docs_make_figures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "make_figures.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_guide_tables_are_current():
    module = _make_figures()
    assert module.stale_tables() == [], (
        "docs/step-sizes.md is stale: run .venv/bin/python docs/make_figures.py")


def test_check_flag_reports_a_stale_table(tmp_path, monkeypatch):
    module = _make_figures()
    guide = tmp_path / "step-sizes.md"
    text = (ROOT / "docs" / "step-sizes.md").read_text()
    # change one number inside the smooth table
    start = text.index("<!-- table:smooth -->")
    end = text.index("<!-- /table:smooth -->")
    table = text[start:end]
    changed = re.sub(r"\b(\d+)  (\w+)$", lambda m: f"{int(m.group(1)) + 1}  {m.group(2)}", table,
                     count=1, flags=re.MULTILINE)
    assert changed != table
    guide.write_text(text[:start] + changed + text[end:])
    monkeypatch.setattr(module, "GUIDE", guide)
    monkeypatch.setattr(module, "FIGURES", [f for f in module.FIGURES if f.name == "smooth"])
    assert module.stale_tables() == ["smooth"]
    assert module.main(["--check"]) == 1
