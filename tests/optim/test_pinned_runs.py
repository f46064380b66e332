"""Seeded runs pinned to the parameters, losses, step sizes and evaluation counts they produced.

Each case trains a small model (or a test problem) with one optimizer and step rule and
compares the result with ``data/pinned_runs.npz``. The pins guard refactors: a change of
structure must not change a single bit. The file records the environment that wrote it
(:func:`descend._environment.fingerprint`: CPU vendor, model and the SIMD features NumPy
dispatches on, OpenBLAS's version and kernel family, Python, NumPy, SciPy and torch).

* **Bit for bit** where this environment is exactly that one.
* **To stated tolerances** anywhere else. Another CPU or release rounds some operations
  differently (a fused multiply-add, a reduction's order, a BLAS kernel), by an ulp; how far
  such a difference travels depends on what fixes the step size, so each case belongs to a
  precision class (eps: the dtype's machine epsilon, 2.2e-16 or 1.2e-7):

  - ``ROUNDING`` (constants, schedules, momentum, Adam, Polyak, backtracking, the closed-form
    quadratic search): the step size is a rounding-stable function of values and gradients,
    so parameters, losses and step sizes agree to sqrt(eps) relative (1.5e-8 in float64,
    3.5e-4 in float32; seen across two CPUs: <= 7e-10); evaluation counts may differ by
    one at a step where an acceptance test sits on a rounding boundary.
  - ``INTERPOLATING`` (strong Wolfe: cubic interpolation between trials): the interpolant
    takes differences of nearly equal values, so a flat phi's trial points carry
    eps / (relative change of phi) of error: parameters and step sizes to eps**(1/4)
    (1.2e-4 / 0.019; seen: <= 2.1e-5), losses to sqrt(eps), counts within one per step.
  - ``BRENT`` (exact search by Brent's method, xtol = 1e-8 = sqrt(eps)): the minimiser along
    a line is fixed only to sqrt(eps) relative where phi is curved, and not at all where phi
    is flat at working precision (a converged logistic regression). Losses still agree to
    sqrt(eps) (at a line minimum f is insensitive to first order in alpha), parameters to
    eps**(1/4); step sizes are not compared elementwise. Brent's evaluation count depends on
    when its bracket falls below the noise of phi, which is rounding itself (seen on two
    CPUs: 26 against 17 at a step from the same start, and at a converged point 3 against
    42, one side finding phi flat): only the total is compared, within a factor of two
    (seen: 1.32).

The test output says which mode ran and why. After a deliberate change of behaviour, rewrite
the pins (and with them the recorded environment) with one command::

    .venv/bin/python tests/optim/test_pinned_runs.py --write
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
import pytest

import descend as ds
from descend import nn, optim
from descend._environment import differences, fingerprint
from descend.compare import run_rule
from descend.problems import make_problem
from descend.train import fit

PINS = Path(__file__).parent / "data" / "pinned_runs.npz"
ENVIRONMENT_KEY = "__environment__"


class Precision(Enum):
    """What fixes a case's step sizes, and so how far an ulp of rounding travels."""

    ROUNDING = "rounding"
    INTERPOLATING = "interpolating"
    BRENT = "brent"


@dataclass(frozen=True)
class Run:
    """What a pinned run produced: final parameters and, per step, loss, step size, passes."""

    params: list[np.ndarray]
    loss: np.ndarray
    lr: np.ndarray
    evaluations: np.ndarray
    gradient_evaluations: np.ndarray | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"param{i}": p for i, p in enumerate(self.params)}
        out |= {"loss": self.loss, "lr": self.lr, "evaluations": self.evaluations}
        if self.gradient_evaluations is not None:
            out["gradient_evaluations"] = self.gradient_evaluations
        return out


def _spirals(n: int = 96, dtype=np.float32):
    data = ds.data.spirals(n, noise=0.1, seed=3, dtype=dtype)
    return data.X, data.y


def _from_history(model, history) -> Run:
    return Run([p.data.copy() for p in model.parameters()], np.array(history.loss),
               np.array(history.lr), np.array(history.evaluations, dtype=np.int64))


def _train(make_opt: Callable[[list], optim.Optimizer], *, dropout: float = 0.0,
           batch_size: int | None = 32, epochs: int = 3, dtype=np.float32) -> Run:
    X, y = _spirals(dtype=dtype)
    model = nn.mlp([2, 16, 16, 2], activation="tanh", dropout=dropout, rng=7, dtype=dtype)
    opt = make_opt(model.parameters())
    history = fit(model, nn.CrossEntropyLoss(), opt, (X, y), epochs=epochs,
                  batch_size=batch_size, seed=11, progress=False)
    return _from_history(model, history)


def _hinge_train(make_opt) -> Run:
    X, y = _spirals(dtype=np.float64)
    t = np.where(y == 1, 1.0, -1.0)
    model = nn.Sequential(nn.Linear(2, 1, rng=5, dtype=np.float64))
    hinge = nn.HingeLoss()
    opt = make_opt(model.parameters())
    history = fit(model, lambda out, yy: hinge(out.reshape(-1), yy), opt, (X, t), epochs=40,
                  batch_size=None, seed=2, progress=False)
    return _from_history(model, history)


def _problem_run(name: str, spec: str, steps: int = 60, momentum: float = 0.0) -> Run:
    # budgets end before f* is met within rounding: runs stop on max_steps or a stall
    problem = make_problem(name, seed=0)
    result = run_rule(problem, spec, max_steps=steps, tol=0.0, momentum=momentum)
    per_step = lambda cum: np.diff(np.asarray(cum, dtype=np.int64), prepend=0)  # noqa: E731
    return Run([p.data.copy() for p in problem.params], np.asarray(result.losses),
               np.asarray(result.lrs), per_step(result.cum_evaluations),
               per_step(result.cum_gradient_evaluations))


def _groups(params):
    params = list(params)
    return [{"params": params[:2], "lr": optim.InverseSqrt(0.5)},
            {"params": params[2:], "lr": 0.05, "weight_decay": 1e-3}]


R, I, B = Precision.ROUNDING, Precision.INTERPOLATING, Precision.BRENT

CASES: dict[str, tuple[Precision, Callable[[], Run]]] = {
    "gd_constant": (R, lambda: _train(lambda ps: optim.GD(ps, lr=0.2))),
    "gd_momentum": (R, lambda: _train(lambda ps: optim.GD(ps, lr=0.05, momentum=0.9))),
    "gd_nesterov_wd": (R, lambda: _train(
        lambda ps: optim.GD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3))),
    "adam": (R, lambda: _train(lambda ps: optim.Adam(ps, lr=1e-2))),
    "adam_armijo": (R, lambda: _train(lambda ps: optim.Adam(ps, lr=optim.Armijo()))),
    "sls_dropout": (R, lambda: _train(lambda ps: optim.GD(ps, lr=optim.Armijo(c1=0.1)),
                                      dropout=0.2)),
    "sls_dropout_f64": (R, lambda: _train(lambda ps: optim.GD(ps, lr=optim.Armijo(c1=0.1)),
                                          dropout=0.2, dtype=np.float64)),
    "armijo_momentum_wd": (R, lambda: _train(
        lambda ps: optim.GD(ps, lr=optim.Armijo(), momentum=0.5, weight_decay=1e-2))),
    "wolfe_full": (I, lambda: _train(lambda ps: optim.GD(ps, lr=optim.StrongWolfe()),
                                     batch_size=None, epochs=15, dtype=np.float64)),
    "wolfe_dropout_wd": (I, lambda: _train(
        lambda ps: optim.GD(ps, lr=optim.StrongWolfe(), weight_decay=1e-3), dropout=0.1,
        epochs=2)),
    "exact_full": (B, lambda: _train(lambda ps: optim.GD(ps, lr=optim.Exact()),
                                     batch_size=None, epochs=6, dtype=np.float64)),
    "polyak_full": (R, lambda: _train(lambda ps: optim.GD(ps, lr=optim.Polyak(0.0, max_lr=5.0)),
                                      batch_size=None, epochs=20, dtype=np.float64)),
    "sps_minibatch": (R, lambda: _train(
        lambda ps: optim.GD(ps, lr=optim.Polyak(0.0, 0.5, 1.0)))),
    "polyak_estimated": (R, lambda: _train(lambda ps: optim.GD(ps, lr=optim.Polyak(None)),
                                           batch_size=None, epochs=20)),
    "length_momentum": (R, lambda: _train(
        lambda ps: optim.GD(ps, lr=optim.ConstantLength(0.05), momentum=0.5))),
    "groups_schedules": (R, lambda: _train(lambda ps: optim.GD(_groups(ps)))),
    "cosine": (R, lambda: _train(lambda ps: optim.GD(ps, lr=optim.Cosine(0.3, 9, warmup=2)))),
    "subgradient_hinge": (R, lambda: _hinge_train(
        lambda ps: optim.Subgradient(ps, lr=optim.InverseSqrt(0.5)))),
    "subgradient_polyak": (R, lambda: _hinge_train(
        lambda ps: optim.Subgradient(ps, lr=optim.Polyak(None)))),
    "compare_logreg_armijo": (R, lambda: _problem_run("logreg", "armijo", steps=25)),
    "compare_logreg_wolfe": (I, lambda: _problem_run("logreg", "wolfe", steps=20)),
    "compare_logreg_exact": (B, lambda: _problem_run("logreg", "exact", steps=20)),
    "compare_leastsq_constant": (R, lambda: _problem_run("leastsq", "constant:1/L", steps=50)),
    "compare_leastsq_exactq": (R, lambda: _problem_run("leastsq", "exact-quadratic", steps=20)),
    "compare_rosenbrock_wolfe": (I, lambda: _problem_run("rosenbrock", "wolfe", steps=80)),
    "compare_svm_invsqrt": (R, lambda: _problem_run("svm", "invsqrt:0.1", steps=80)),
    "compare_lasso_polyak": (R, lambda: _problem_run("lasso", "polyak", steps=80)),
    "compare_ridge_momentum": (R, lambda: _problem_run("ridge", "armijo", momentum=0.5)),
}


def _load_pins() -> tuple[dict[str, np.ndarray], dict[str, str]]:
    with np.load(PINS, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(str(arrays.pop(ENVIRONMENT_KEY)))


def _mode(recorded: dict[str, str]) -> tuple[bool, str]:
    """Whether bits are compared here, and a sentence saying why (for the test output)."""
    changed = differences(recorded)
    if not changed:
        return True, "pinned runs: bit for bit (this environment wrote the pins)"
    return False, ("pinned runs: stated tolerances, not bits (the pins were written in "
                   "another environment: " + "; ".join(changed) + ")")


def _close(got: np.ndarray, want: np.ndarray, rtol: float, label: str) -> None:
    # relative to the array's scale, so that entries near zero are held to the same bound
    scale = float(np.max(np.abs(want), initial=0.0))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=label)


def _compare(precision: Precision, quantity: str, got: np.ndarray, want: np.ndarray,
             label: str) -> None:
    """The tolerance comparison of one quantity, as stated in the module's docstring."""
    if quantity.endswith("evaluations"):
        assert got.shape == want.shape, label
        if precision is Precision.BRENT:
            assert want.sum() / 2 <= got.sum() <= 2 * want.sum(), label
        else:
            assert np.max(np.abs(got - want), initial=0) <= 1, label
        return
    eps = float(np.finfo(want.dtype).eps)
    if quantity == "loss" or precision is Precision.ROUNDING:
        _close(got, want, np.sqrt(eps), label)
    elif quantity != "lr" or precision is Precision.INTERPOLATING:
        _close(got, want, eps ** 0.25, label)
    # Brent's step sizes: not compared elementwise (see the module's docstring)


@pytest.mark.parametrize("name", sorted(CASES))
def test_run_matches_its_pin(name: str) -> None:
    pins, recorded = _load_pins()
    exact, why = _mode(recorded)
    print(why)
    precision, case = CASES[name]
    got = case().arrays()
    pinned = {k.split("/", 1)[1]: v for k, v in pins.items() if k.startswith(name + "/")}
    assert sorted(got) == sorted(pinned), f"{name}: {sorted(got)} computed, {sorted(pinned)} pinned"
    for quantity, array in got.items():
        want, label = pinned[quantity], f"{name}/{quantity} ({why})"
        assert array.dtype == want.dtype and array.shape == want.shape, label
        # the tolerances hold everywhere; the bits only in the environment of the pins
        _compare(precision, quantity, array, want, label)
        if exact:
            assert array.tobytes() == want.tobytes(), (
                f"{label}: max |diff| {np.max(np.abs(array - want), initial=0.0):.3g}")


def test_pins_cover_distinct_runs() -> None:
    # The cases are not accidentally the same run: the pinned parameters differ pairwise.
    pins, _ = _load_pins()
    firsts = {k.split("/")[0]: pins[k].tobytes() for k in pins if k.endswith("/param0")}
    assert len(firsts) == len(CASES)
    assert len(set(firsts.values())) == len(firsts)


def test_pins_name_the_environment_that_wrote_them() -> None:
    _, recorded = _load_pins()
    assert set(recorded) == set(fingerprint())
    assert all(recorded.values())


@pytest.mark.parametrize("precision", list(Precision))
def test_tolerance_mode_catches_a_changed_run(precision: Precision) -> None:
    # the tolerances are loose enough for rounding, not for a different algorithm: a 1%
    # change of the parameters or of the loss, or two more evaluations at one step (Brent:
    # twice as many in all), fails
    want = np.linspace(1.0, 2.0, 8)
    for quantity in ("param0", "loss"):
        with pytest.raises(AssertionError):
            _compare(precision, quantity, want * 1.01, want, quantity)
    counts = np.full(8, 4, dtype=np.int64)
    more = counts.copy()
    if precision is Precision.BRENT:
        more = 2 * counts + 1
    else:
        more[3] += 2
    with pytest.raises(AssertionError):
        _compare(precision, "evaluations", more, counts, "evaluations")


def _write_pins() -> None:  # pragma: no cover - run by hand (see the module's docstring)
    arrays: dict[str, np.ndarray] = {ENVIRONMENT_KEY: np.array(json.dumps(fingerprint()))}
    for name, (_, case) in CASES.items():
        for quantity, a in case().arrays().items():
            arrays[f"{name}/{quantity}"] = np.asarray(a)
    PINS.parent.mkdir(exist_ok=True)
    np.savez(PINS, **arrays)
    print(f"wrote {len(arrays) - 1} arrays for {len(CASES)} cases to {PINS}")


if __name__ == "__main__":  # pragma: no cover
    if "--write" in sys.argv:
        _write_pins()
    else:
        print("python tests/optim/test_pinned_runs.py --write  # overwrite the pins")
