"""Paths on a loss surface: the drawn vertices are the iterates (checked against NumPy's
own iteration), their projection onto the plane of a higher-dimensional problem is NumPy's
orthogonal projection, the subgradient method's best iterate is marked, and
``descend compare --path-plot`` writes the picture or refuses a bad target in one line."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import descend as ds
from descend import compare as C
from descend import problems as P
from descend.cli import main
from descend.errors import ConfigError


def lines(fig):
    return {a.get_gid(): np.column_stack(a.get_data()).astype(float)
            for a in fig.axes[0].get_lines() if a.get_gid()}


def test_two_dimensional_paths_are_the_iterates():
    p = P.make_problem("quad2d")
    H = np.diag([1.0, 50.0])
    assert np.linalg.cond(H) == 50
    runs = [C.run_rule(p, "constant:1.8/L", max_steps=25, record_path=True),
            C.run_rule(p, "exact", max_steps=12, record_path=True),
            C.run_rule(p, "constant:0.5/L", momentum=0.7, max_steps=25, record_path=True)]
    # steepest descent with a constant step, by NumPy: x <- x - a H x
    a = 1.8 / 50
    x, expected = np.array([10.0, 1.0]), [np.array([10.0, 1.0])]
    for _ in range(25):
        x = x - a * H @ x
        expected.append(x)
    np.testing.assert_allclose(runs[0].iterates, expected, rtol=1e-12, atol=1e-14)
    # exact search: each step is orthogonal to the one before
    steps = np.diff(runs[1].iterates, axis=0)
    cosines = [u @ v / np.linalg.norm(u) / np.linalg.norm(v) for u, v in itertools.pairwise(steps)]
    assert np.max(np.abs(cosines)) < 1e-6
    fig = ds.plot.paths(p, runs, points=20)
    drawn = lines(fig)
    for i, r in enumerate(runs):
        np.testing.assert_array_equal(drawn[f"path:{i}"], r.iterates)
    np.testing.assert_array_equal(drawn["x_star"], [[0.0, 0.0]])
    np.testing.assert_array_equal(drawn["start"], [[10.0, 1.0]])
    assert not any(k.startswith("best:") for k in drawn)


def test_higher_dimensions_are_projected_onto_the_plane_the_title_names():
    p = P.least_squares(n=30, d=6)
    run = C.run_rule(p, "constant:0.5/L", max_steps=15, record_path=True)
    fig = ds.plot.paths(p, [run], points=10)
    x0, xs, end = np.zeros(6), p.x_star[0], run.iterates[-1]
    # NumPy's orthonormal basis of span(x* - x0, end - x0), signs as Gram-Schmidt's
    Q, R = np.linalg.qr(np.column_stack([xs - x0, end - x0]))
    Q = Q * np.sign(np.diag(R))
    np.testing.assert_allclose(lines(fig)["path:0"], (run.iterates - x0) @ Q, atol=1e-12)
    np.testing.assert_allclose(lines(fig)["x_star"], [(xs - x0) @ Q], atol=1e-12)
    title = fig.axes[0].get_title()
    assert "6-D" in title and "plane through x0, x* and the end of constant:0.5/L" in title
    plane = ds.plot.path_plane(p, [run])
    for point in (x0, xs, end):  # the three points lie on the plane: projection keeps them
        np.testing.assert_allclose(plane.lift(plane.project(point[None]))[0], point,
                                   atol=1e-10)


def test_subgradient_best_iterate_is_marked():
    p = P.make_problem("maxaffine")
    run = C.run_rule(p, "invsqrt:0.3", max_steps=60, record_path=True)
    assert run.optimizer == "subgradient"
    values = [p.numpy_objective([x]) for x in run.iterates]
    k = int(np.argmin(values))
    fig = ds.plot.paths(p, [run], points=8)
    drawn = lines(fig)
    np.testing.assert_allclose(drawn["best:0"], drawn["path:0"][k:k + 1])
    assert values[k] < values[-1] or k == len(values) - 1


def test_runs_without_iterates_are_refused():
    p = P.make_problem("quad2d")
    run = C.run_rule(p, "exact", max_steps=3)
    assert run.iterates is None
    with pytest.raises(ConfigError, match="record_path=True"):
        ds.plot.paths(p, [run])


def test_cli_writes_the_path_plot(tmp_path, capsys):
    out = tmp_path / "paths.png"
    code = main(["compare", "--problem", "quad2d", "--steps", "exact,constant:1.8/L",
                 "--max-steps", "20", "--path-plot", str(out), "--quiet"])
    assert code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"path plot: {out}" in capsys.readouterr().out


@pytest.mark.parametrize("argv, text", [
    (["--path-plot", "paths.txt"], "--path-plot paths.txt: unknown image format '.txt'"),
    (["--path-plot", "-", "--plot", "-"], "cannot both write to standard output"),
])
def test_cli_bad_path_plot_is_one_line(tmp_path, monkeypatch, capsys, argv, text):
    monkeypatch.chdir(tmp_path)
    code = main(["compare", "--problem", "quad2d", "--max-steps", "2", *argv])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and text in err
    assert list(tmp_path.iterdir()) == []
