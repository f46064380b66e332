"""descend.compare: runs of step rules on test problems, the table, the plot, the command."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

from descend import compare as C
from descend import problems as P
from descend.cli import main
from descend.errors import ConfigError


@pytest.fixture(scope="module")
def logreg():
    return P.logistic_regression()


@pytest.fixture(scope="module")
def maxaffine():
    return P.max_affine()


def check_record(r: C.RunResult) -> None:
    """The per-step arrays agree with each other and with the totals."""
    assert r.stop_reason in C.STOP_REASONS
    assert len(r.lrs) == r.steps
    assert len(r.losses) == r.steps + 1
    assert len(r.cum_evaluations) == len(r.losses) == len(r.cum_gradient_evaluations)
    assert r.cum_evaluations[0] == 0 and np.all(np.diff(r.cum_evaluations) >= 1)
    assert r.cum_evaluations[-1] == r.evaluations
    assert r.cum_gradient_evaluations[-1] == r.gradient_evaluations
    assert math.isfinite(r.final_loss) and r.seconds >= 0
    if r.gaps is not None:
        np.testing.assert_allclose(r.gaps, r.losses - (r.losses[0] - r.gaps[0]))
        assert math.isfinite(r.gap)


# ------------------------------------------------------------------------------ run_rule
def test_run_rule_reaches_the_tolerance_and_leaves_the_problem_there(logreg):
    r = C.run_rule(logreg, "constant:1/L", tol=1e-8, max_steps=500)
    check_record(r)
    assert r.stop_reason == "loss_below" and 0 <= r.gap <= 1e-8
    assert r.rule.startswith("constant:1/L (=") and r.optimizer == "gd"
    assert r.evaluations == r.gradient_evaluations == r.steps  # one pass per constant step
    np.testing.assert_allclose(r.lrs, 1 / logreg.lipschitz)
    assert logreg.value() == r.final_loss == r.losses[-1]
    assert np.all(np.diff(r.losses) <= 0)  # 1/L never raises f


def test_run_rule_resets_the_problem_first(logreg):
    a = C.run_rule(logreg, "armijo", max_steps=5)
    b = C.run_rule(logreg, "armijo", max_steps=5)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert a.losses[0] == pytest.approx(math.log(2))


def test_line_search_counts_its_trial_points(logreg):
    r = C.run_rule(logreg, "exact", max_steps=100)
    check_record(r)
    assert r.stop_reason == "loss_below"
    assert r.evaluations > 3 * r.steps  # Brent evaluates many trial points per step
    assert r.gradient_evaluations == r.steps
    w = C.run_rule(logreg, "wolfe", max_steps=100)
    assert w.gradient_evaluations == w.evaluations  # every Wolfe trial is forward + backward


def test_bare_polyak_uses_the_known_optimum(logreg):
    rule, label = C.resolve_rule(logreg, "polyak")
    assert rule.f_star == logreg.f_star and label == "polyak"
    mlp = P.mlp_digits(hidden=4, samples=50)
    rule, label = C.resolve_rule(mlp, "polyak")
    assert rule.f_star is None and "estimated" in label
    rule, _ = C.resolve_rule(logreg, "polyak:0.3")
    assert rule.f_star == 0.3


def test_k_over_L_needs_a_known_lipschitz_constant(logreg):
    rule, _ = C.resolve_rule(logreg, "invsqrt:2/L:4")
    assert rule.a == pytest.approx(2 / logreg.lipschitz) and rule.b == 4
    with pytest.raises(ConfigError, match="Lipschitz"):
        C.resolve_rule(P.rosenbrock(), "constant:1/L")
    with pytest.raises(ConfigError, match="unknown step rule"):
        C.resolve_rule(logreg, "bogus")


@pytest.mark.parametrize("lr", ["constant:100", "constant:1e30"])
def test_too_large_constant_step_diverges_with_finite_numbers(logreg, lr):
    r = C.run_rule(logreg, lr, max_steps=200)
    check_record(r)
    assert r.diverged and r.stop_reason == "diverged"
    assert "overshooting" in r.detail
    assert r.steps < 10  # caught at once, not after 200 steps
    assert math.isfinite(r.final_loss) and math.isfinite(r.gap) and r.gap > 0


def test_non_finite_loss_is_divergence():
    p = P.least_squares(n=30, d=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overflow is reported by name, not as a warning
        r = C.run_rule(p, "constant:1e200", max_steps=50)
    assert r.diverged
    assert not np.isfinite(r.losses[-1])
    assert r.final_loss == r.losses[-2] == r.best_loss  # the last finite iterate
    assert "inf" in r.detail or "nan" in r.detail
    assert "diverged" in C.format_table([r])


def test_non_smooth_problems_get_the_subgradient_method(maxaffine):
    r = C.run_rule(maxaffine, "invsqrt:0.1", max_steps=400)
    check_record(r)
    assert r.optimizer == "subgradient" and r.stop_reason == "max_steps"
    assert r.bounds is not None and len(r.bounds) == len(r.losses)
    assert np.all(r.best_gaps[1:] <= r.bounds[1:])  # the classical guarantee holds throughout
    assert r.bound == r.bounds[-1]
    assert r.final_loss == r.best_loss == pytest.approx(maxaffine.value())  # best iterate kept
    assert r.gap == pytest.approx(np.min(r.gaps))
    assert np.any(np.diff(r.losses) > 0)  # not a descent method


def test_line_search_on_a_non_smooth_problem_uses_gd_and_stalls(maxaffine):
    r = C.run_rule(maxaffine, "armijo", max_steps=400)
    check_record(r)
    assert r.optimizer == "gd" and r.stop_reason == "stalled"
    assert r.gap > 1e-3 and r.bounds is None


def test_forced_optimizer_and_momentum_checks(maxaffine, logreg):
    with pytest.raises(ConfigError, match="line search"):
        C.run_rule(maxaffine, "armijo", optimizer="subgradient")
    with pytest.raises(ConfigError, match="momentum"):
        C.run_rule(maxaffine, "invsqrt:0.1", optimizer="subgradient", momentum=0.5)
    r = C.run_rule(maxaffine, "invsqrt:0.1", optimizer="gd", max_steps=20)
    assert r.optimizer == "gd"
    m = C.run_rule(logreg, "constant:0.5/L", momentum=0.5, max_steps=300, tol=1e-8)
    assert m.optimizer == "gd+momentum(0.5)" and m.stop_reason == "loss_below"
    with pytest.raises(ConfigError):
        C.run_rule(logreg, "armijo", optimizer="newton")
    with pytest.raises(ConfigError):
        C.run_rule(logreg, "armijo", max_steps=0)
    with pytest.raises(ConfigError):
        C.run_rule(logreg, "armijo", tol=-1.0)


def test_other_stop_reasons():
    mlp = P.mlp_digits(hidden=4, samples=60)
    r = C.run_rule(mlp, "armijo", max_steps=5)
    check_record(r)
    assert r.stop_reason == "max_steps" and r.gap is None and r.gaps is None
    r = C.run_rule(P.saddle(start=(0.0, 0.0)), "armijo")
    assert r.stop_reason == "stationary" and r.steps == 1  # the first step, of length 0
    assert r.losses[0] == r.losses[1] and r.lrs[0] * r.cum_evaluations[-1] >= 0
    r = C.run_rule(P.rosenbrock(), "constant:1e-4", max_steps=10**6, time_limit=0.05)
    check_record(r)
    assert r.stop_reason == "time_limit" and 0 < r.steps < 10**6


def test_compare_runs_each_rule_and_accepts_objects(logreg):
    from descend.optim import Armijo

    rule = Armijo()
    results = C.compare(logreg, ["armijo", rule, "polyak"], max_steps=100)
    assert [r.stop_reason for r in results] == ["loss_below"] * 3
    assert rule.previous is None  # the rule object was copied, not used
    assert len(C.compare(logreg, "armijo, wolfe", max_steps=50)) == 2
    with pytest.raises(ConfigError):
        C.compare(logreg, [])


def test_format_table_lists_every_run(logreg, maxaffine):
    results = C.compare(logreg, ["constant:1/L", "constant:100"], max_steps=100)
    text = C.format_table(results)
    lines = text.splitlines()
    assert len(lines) == 2 + len(results)
    for word in ("rule", "f final", "f - f*", "steps", "f-evals", "g-evals", "time", "stop"):
        assert word in lines[0]
    assert "diverged" in lines[-1] and "loss_below" in lines[2]
    sub = C.format_table(C.compare(maxaffine, ["invsqrt:0.1"], max_steps=50))
    assert "bound" in sub.splitlines()[0]
    mlp = P.mlp_digits(hidden=4, samples=60)
    assert "n/a" in C.format_table([C.run_rule(mlp, "armijo", max_steps=2)])


def test_plot_writes_a_small_png(tmp_path, logreg, maxaffine):
    pytest.importorskip("matplotlib")
    path = C.plot(C.compare(logreg, ["armijo", "constant:100"], max_steps=50),
                  tmp_path / "a.png", logreg)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size < 150_000
    C.plot(C.compare(maxaffine, ["invsqrt:0.1"], max_steps=50), tmp_path / "b.png", maxaffine)
    mlp = P.mlp_digits(hidden=4, samples=60)
    C.plot(C.compare(mlp, ["armijo"], max_steps=3), tmp_path / "c.png", mlp)
    assert (tmp_path / "b.png").exists() and (tmp_path / "c.png").exists()


def test_default_specs_suit_the_problem(logreg, maxaffine):
    assert "constant:1/L" in C.default_specs(logreg) and "polyak" in C.default_specs(logreg)
    assert all(C.resolve_rule(maxaffine, s)[0].needs == "none"
               for s in C.default_specs(maxaffine))
    assert "constant:1/L" not in C.default_specs(P.rosenbrock())


# ------------------------------------------------------------------------------ the command
def test_cli_in_a_subprocess_prints_the_table_and_writes_the_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "tmp.png"
    proc = subprocess.run(
        [sys.executable, "-m", "descend", "compare", "--problem", "logreg", "--steps",
         "constant:0.5,armijo", "--max-steps", "50", "--plot", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "f - f*" in proc.stdout and "constant:0.5" in proc.stdout and "armijo" in proc.stdout
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_cli_reports_divergence_without_crashing(capsys):
    code = main(["compare", "--problem", "logreg", "--steps", "constant:100,armijo", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert "constant:100: diverged at step" in out and "overshooting" in out
    assert "2/L" in out


def test_cli_default_steps_and_options(capsys):
    code = main(["compare", "--problem", "maxaffine", "--max-steps", "30", "--seed", "1"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "subgradient" in out and "bound" in out
    code = main(["compare", "--problem", "leastsq", "--steps", "constant:1/L", "--momentum",
                 "0.5", "--tol", "1e-9", "--time-limit", "30"])
    out, _ = capsys.readouterr()
    assert code == 0 and "gd+momentum(0.5)" in out


@pytest.mark.parametrize(
    "argv, text",
    [
        (["--problem", "nope"], "unknown problem 'nope'"),
        (["--problem", "logreg", "--steps", "bogus"], "unknown step rule"),
        (["--problem", "logreg", "--steps", "constant:abc"], "must be numbers"),
        (["--problem", "logreg", "--steps", "constant:-1"], "lr must be"),
        (["--problem", "rosenbrock", "--steps", "constant:1/L"], "Lipschitz"),
        (["--problem", "logreg", "--steps", ","], "empty"),
        (["--problem", "maxaffine", "--optimizer", "subgradient", "--steps", "armijo"],
         "line search"),
        (["--problem", "maxaffine", "--optimizer", "subgradient", "--momentum", "0.5"],
         "--momentum"),
        (["--problem", "logreg", "--momentum", "1.5"], "--momentum"),
        (["--problem", "logreg", "--max-steps", "0"], "--max-steps"),
        (["--problem", "logreg", "--tol", "-1"], "--tol"),
        (["--steps", "armijo"], "--problem"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(capsys, argv, text):
    code = main(["compare", *argv])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and text in err
    assert "Traceback" not in err


def test_cli_bad_input_in_a_subprocess_has_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "descend", "compare", "--problem", "nope", "--steps", "armijo"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "unknown problem" in proc.stderr


def test_without_f_star_the_plot_keeps_the_curves_apart_on_a_log_scale():
    mlp = P.mlp_digits(hidden=4, samples=60)
    results = C.compare(mlp, ["armijo", "constant:0.05"], max_steps=40)
    curves, label = C.plotted_values(results)
    assert "f_ref" in label
    best = min(range(2), key=lambda i: results[i].losses[-1])
    gap0 = max(r.losses[0] for r in results) - min(r.losses.min() for r in results)
    # the best run ends a thousandth of the initial gap above the reference, not at zero
    assert curves[best][-1] == pytest.approx(1e-3 * gap0, rel=1e-9)
    assert all(np.all(c > 0) for c in curves)
    # differences between the runs are kept exactly: the curves are f shifted by one number
    np.testing.assert_allclose(curves[0] - curves[0][0], results[0].losses - results[0].losses[0],
                               atol=1e-12)
    curves, label = C.plotted_values(C.compare(P.logistic_regression(), ["armijo"], max_steps=5))
    assert label == "f(x_k) - f*"


def test_compare_shows_progress_only_for_runs_longer_than_a_second(monkeypatch):
    import tqdm.auto

    made = []

    class Bar:
        def __init__(self, **kwargs):
            made.append(kwargs)
            self.n = 0

        def update(self, n):
            self.n += n

        def close(self):
            made.append(self.n)

        def set_postfix(self, *args, **kwargs):
            pass

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    mlp = P.mlp_digits(hidden=4, samples=60)
    C.run_rule(mlp, "armijo", max_steps=3, progress=True)
    assert made[0]["delay"] == 1.0 and made[0]["desc"] == "armijo" and made[0]["total"] == 3
    assert made[1] == 3  # one update per step
    C.run_rule(mlp, "armijo", max_steps=3)
    assert len(made) == 2  # no bar unless asked for
