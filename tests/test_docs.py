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


def _run_blocks(tmp_path, blocks: list[str]) -> list[str]:
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
    return lines


def test_readme_python_blocks_run_as_written(tmp_path):
    # the fast suite's share: every block but the scikit-learn ones (a 5-fold
    # cross-validation, run in full by the slow suite below)
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 2  # the quick start and the loop at least
    _run_blocks(tmp_path, [b for b in blocks if "sklearn" not in b])


@pytest.mark.slow
def test_readme_python_blocks_all_run_as_written(tmp_path):
    pytest.importorskip("sklearn")
    lines = _run_blocks(tmp_path, python_blocks((ROOT / "README.md").read_text()))
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


def _guide_with(tmp_path, monkeypatch, module, edit):
    """The smooth table's guide in a scratch file, with ``edit`` applied to the table."""
    guide = tmp_path / "step-sizes.md"
    text = (ROOT / "docs" / "step-sizes.md").read_text()
    start = text.index("<!-- table:smooth -->")
    end = text.index("<!-- /table:smooth -->")
    changed = edit(text[start:end])
    assert changed != text[start:end]
    guide.write_text(text[:start] + changed + text[end:])
    monkeypatch.setattr(module, "GUIDE", guide)
    monkeypatch.setattr(module, "FIGURES", [f for f in module.FIGURES if f.name == "smooth"])


def _exact_row_evals(table: str, factor: float) -> str:
    def scale(m):
        return f"{m.group(1)}{round(int(m.group(2)) * factor):>{len(m.group(2))}}{m.group(3)}"
    return re.sub(r"^(exact\s.*?\d+\s+)(\d+)(\s+\d+\s+\w+)$", scale, table, count=1,
                  flags=re.MULTILINE)


def test_guide_records_the_environment_of_its_tables():
    module = _make_figures()
    recorded = module.recorded_environment((ROOT / "docs" / "step-sizes.md").read_text())
    from descend._environment import fingerprint
    assert recorded is not None and set(recorded) == set(fingerprint())


@pytest.mark.parametrize("elsewhere", [False, True])
def test_tables_compare_as_text_here_and_to_tolerances_elsewhere(tmp_path, monkeypatch,
                                                                elsewhere):
    module = _make_figures()
    if elsewhere:
        monkeypatch.setattr(module, "differences", lambda recorded: ["cpu_model: 'A' there"])
    else:
        monkeypatch.setattr(module, "differences", lambda recorded: [])
    # Brent's evaluation count 6% higher (seen across two CPUs): a rounding effect
    _guide_with(tmp_path, monkeypatch, module, lambda t: _exact_row_evals(t, 1.06))
    assert module.check_mode(module.GUIDE.read_text())[0] is not elsewhere
    assert module.stale_tables() == ([] if elsewhere else ["smooth"])


@pytest.mark.parametrize("edit", [
    lambda t: _exact_row_evals(t, 2.5),                                 # Brent 2.5x the work
    lambda t: t.replace("0.4451344445", "0.4451354445", 1),            # a loss 2e-6 off
    lambda t: re.sub(r"\b(\d+)(\s+\d+\s+\d+\s+loss_below)",         # two more steps
                     lambda m: f"{int(m.group(1)) + 2:>{len(m.group(1))}}{m.group(2)}", t,
                     count=1),
    lambda t: t.replace("loss_below", "max_steps", 1),                  # another stop
])
def test_tolerance_mode_still_catches_a_changed_table(tmp_path, monkeypatch, edit):
    module = _make_figures()
    monkeypatch.setattr(module, "differences", lambda recorded: ["cpu_model: 'A' there"])
    _guide_with(tmp_path, monkeypatch, module, edit)
    assert module.stale_tables() == ["smooth"]


CPUS = ("Intel Xeon", "AMD EPYC")


def test_benchmarks_header_names_the_machine_of_every_section():
    text = (ROOT / "BENCHMARKS.md").read_text()
    header = text[text.index("## Machine and versions"):text.index("\n## 1.")]
    machine_of: dict[str, str] = {}
    for line in header.split("\n- ")[1:]:
        cpu = next(c for c in CPUS if c in line)
        listed = re.search(r"sections? ([\d, and]+)", line)
        for number in re.findall(r"\d+", listed.group(1)):
            assert number not in machine_of, f"section {number} listed twice"
            machine_of[number] = cpu
    sections = re.findall(r"^## (\d+)\. .*?(?=^## \d+\.|\Z)", text, re.S | re.M)
    bodies = re.split(r"^## \d+\. ", text, flags=re.M)[1:]
    assert sections and len(sections) == len(bodies)
    for number, body in zip(sections, bodies):
        assert number in machine_of, f"section {number}: no machine in the header"
        named = {c for c in CPUS if c in body}
        assert named <= {machine_of[number]}, (
            f"section {number} names {named}, the header says {machine_of[number]}")
