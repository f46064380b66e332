"""The lock files pin every package with hashes, and the run lock is the test lock's subset."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins(name: str) -> dict[str, tuple[str, list[str]]]:
    """package -> (version, hashes) from a pip-compile output file."""
    text = (ROOT / "requirements" / name).read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)(.*)$", line)
        if match:
            pins[match[1].lower()] = (match[2], re.findall(r"--hash=sha256:([0-9a-f]{64})",
                                                           match[3]))
    return pins


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower().replace("_", "-")
            for r in requirements}


def test_every_locked_package_has_an_exact_version_and_a_hash():
    for name in ("run.txt", "test.txt"):
        pins = _pins(name)
        assert pins, name
        for package, (version, hashes) in pins.items():
            assert hashes, f"{name}: {package}=={version} has no hash"


def test_run_lock_agrees_with_the_test_lock():
    run, test = _pins("run.txt"), _pins("test.txt")
    assert set(run) <= set(test)
    assert {p: run[p][0] for p in run} == {p: test[p][0] for p in run}
    assert "torch" not in run and "pytest" not in run  # `make run` stays light


def test_locks_cover_what_pyproject_asks_for():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = _requirement_names(project["dependencies"])
    extras = project["optional-dependencies"]
    assert core | _requirement_names(extras["plot"]) <= set(_pins("run.txt"))
    wanted = core | _requirement_names(extras["plot"]) | _requirement_names(extras["test"])
    assert wanted <= set(_pins("test.txt"))


def test_readme_states_the_locked_versions():
    readme = (ROOT / "README.md").read_text().replace("\n", " ")
    test = _pins("test.txt")
    for label, package in [("NumPy", "numpy"), ("SciPy", "scipy"),
                           ("scikit-learn", "scikit-learn"), ("matplotlib", "matplotlib"),
                           ("pytest", "pytest"), ("hypothesis", "hypothesis")]:
        assert f"{label} {test[package][0]}" in readme, (label, test[package][0])
    assert f"torch=={test['torch'][0]}" in readme
