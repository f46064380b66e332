"""Seeded runs pinned to the parameters they produced before the step path was rebuilt.

Each case trains a small model (or a test problem) with one optimizer and step rule and
compares every final parameter with the arrays stored in ``data/pinned_runs.npz``, which were
written by the code as it stood before the rebuild (run this file as a script to see how).
On a machine whose BLAS gives the same bits as the one that wrote the pins (checked with a
fingerprint of a few matrix products), the comparison is bit for bit; elsewhere the products
themselves round differently, so the comparison is to 1e-6 relative (float32) or 1e-12
(float64) and the reason is printed.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import descend as ds
from descend import nn, optim
from descend.compare import run_rule
from descend.problems import make_problem
from descend.train import fit

PINS = Path(__file__).parent / "data" / "pinned_runs.npz"


def _blas_fingerprint() -> str:
    rng = np.random.default_rng(0)
    h = hashlib.sha256()
    for dtype in (np.float32, np.float64):
        for shape in ((32, 16, 8), (200, 20, 1), (128, 64, 32)):
            a = rng.standard_normal(shape[:2]).astype(dtype)
            b = rng.standard_normal(shape[1:]).astype(dtype)
            h.update((a @ b).tobytes())
            h.update((a.T @ (a @ b)).tobytes())
    return h.hexdigest()


def _spirals(n: int = 96, dtype=np.float32):
    data = ds.data.spirals(n, noise=0.1, seed=3, dtype=dtype)
    return data.X, data.y


def _train(make_opt: Callable[[list], optim.Optimizer], *, dropout: float = 0.0,
           batch_size: int | None = 32, epochs: int = 3, dtype=np.float32) -> list[np.ndarray]:
    X, y = _spirals(dtype=dtype)
    model = nn.mlp([2, 16, 16, 2], activation="tanh", dropout=dropout, rng=7, dtype=dtype)
    opt = make_opt(model.parameters())
    history = fit(model, nn.CrossEntropyLoss(), opt, (X, y), epochs=epochs,
                  batch_size=batch_size, seed=11, progress=False)
    return [p.data.copy() for p in model.parameters()] + _trace(history)


def _trace(history) -> list[np.ndarray]:
    """Per step: the loss, the step size and the forward passes."""
    return [np.array(history.loss), np.array(history.lr),
            np.array(history.evaluations, dtype=np.float64)]


def _hinge_train(make_opt) -> list[np.ndarray]:
    X, y = _spirals(dtype=np.float64)
    t = np.where(y == 1, 1.0, -1.0)
    model = nn.Sequential(nn.Linear(2, 1, rng=5, dtype=np.float64))
    hinge = nn.HingeLoss()
    opt = make_opt(model.parameters())
    history = fit(model, lambda out, yy: hinge(out.reshape(-1), yy), opt, (X, t), epochs=40,
                  batch_size=None, seed=2, progress=False)
    return [p.data.copy() for p in model.parameters()] + _trace(history)


def _problem_run(name: str, spec: str, steps: int = 60, momentum: float = 0.0):
    # budgets end before f* is met within rounding: runs stop on max_steps or a stall
    problem = make_problem(name, seed=0)
    result = run_rule(problem, spec, max_steps=steps, tol=0.0, momentum=momentum)
    arrays = [p.data.copy() for p in problem.params]
    arrays += [result.losses, result.lrs, result.cum_evaluations.astype(np.float64),
               result.cum_gradient_evaluations.astype(np.float64)]
    return arrays


def _groups(params):
    params = list(params)
    return [{"params": params[:2], "lr": optim.InverseSqrt(0.5)},
            {"params": params[2:], "lr": 0.05, "weight_decay": 1e-3}]


CASES: dict[str, Callable[[], list[np.ndarray]]] = {
    "gd_constant": lambda: _train(lambda ps: optim.GD(ps, lr=0.2)),
    "gd_momentum": lambda: _train(lambda ps: optim.GD(ps, lr=0.05, momentum=0.9)),
    "gd_nesterov_wd": lambda: _train(
        lambda ps: optim.GD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "adam": lambda: _train(lambda ps: optim.Adam(ps, lr=1e-2)),
    "adam_armijo": lambda: _train(lambda ps: optim.Adam(ps, lr=optim.Armijo())),
    "sls_dropout": lambda: _train(lambda ps: optim.GD(ps, lr=optim.Armijo(c1=0.1)),
                                  dropout=0.2),
    "sls_dropout_f64": lambda: _train(lambda ps: optim.GD(ps, lr=optim.Armijo(c1=0.1)),
                                      dropout=0.2, dtype=np.float64),
    "armijo_momentum_wd": lambda: _train(
        lambda ps: optim.GD(ps, lr=optim.Armijo(), momentum=0.5, weight_decay=1e-2)),
    "wolfe_full": lambda: _train(lambda ps: optim.GD(ps, lr=optim.StrongWolfe()),
                                 batch_size=None, epochs=15, dtype=np.float64),
    "wolfe_dropout_wd": lambda: _train(
        lambda ps: optim.GD(ps, lr=optim.StrongWolfe(), weight_decay=1e-3), dropout=0.1,
        epochs=2),
    "exact_full": lambda: _train(lambda ps: optim.GD(ps, lr=optim.Exact()),
                                 batch_size=None, epochs=6, dtype=np.float64),
    "polyak_full": lambda: _train(lambda ps: optim.GD(ps, lr=optim.Polyak(0.0, max_lr=5.0)),
                                  batch_size=None, epochs=20, dtype=np.float64),
    "sps_minibatch": lambda: _train(lambda ps: optim.GD(ps, lr=optim.Polyak(0.0, 0.5, 1.0))),
    "polyak_estimated": lambda: _train(lambda ps: optim.GD(ps, lr=optim.Polyak(None)),
                                       batch_size=None, epochs=20),
    "length_momentum": lambda: _train(lambda ps: optim.GD(ps, lr=optim.ConstantLength(0.05),
                                                          momentum=0.5)),
    "groups_schedules": lambda: _train(lambda ps: optim.GD(_groups(ps))),
    "cosine": lambda: _train(lambda ps: optim.GD(ps, lr=optim.Cosine(0.3, 9, warmup=2))),
    "subgradient_hinge": lambda: _hinge_train(
        lambda ps: optim.Subgradient(ps, lr=optim.InverseSqrt(0.5))),
    "subgradient_polyak": lambda: _hinge_train(
        lambda ps: optim.Subgradient(ps, lr=optim.Polyak(None))),
    "compare_logreg_armijo": lambda: _problem_run("logreg", "armijo", steps=25),
    "compare_logreg_wolfe": lambda: _problem_run("logreg", "wolfe", steps=20),
    "compare_logreg_exact": lambda: _problem_run("logreg", "exact", steps=20),
    "compare_leastsq_constant": lambda: _problem_run("leastsq", "constant:1/L", steps=50),
    "compare_leastsq_exactq": lambda: _problem_run("leastsq", "exact-quadratic", steps=20),
    "compare_rosenbrock_wolfe": lambda: _problem_run("rosenbrock", "wolfe", steps=80),
    "compare_svm_invsqrt": lambda: _problem_run("svm", "invsqrt:0.1", steps=80),
    "compare_lasso_polyak": lambda: _problem_run("lasso", "polyak", steps=80),
    "compare_ridge_momentum": lambda: _problem_run("ridge", "armijo", momentum=0.5),
}


def _load_pins() -> tuple[dict[str, np.ndarray], str]:
    with np.load(PINS, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, str(arrays.pop("__fingerprint__"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_run_matches_its_pin(name: str) -> None:
    pins, fingerprint = _load_pins()
    got = CASES[name]()
    keys = sorted((k for k in pins if k.startswith(name + "/")),
                  key=lambda k: int(k.rsplit("/")[1]))
    assert len(keys) == len(got), f"{name}: {len(got)} arrays, {len(keys)} pinned"
    exact = fingerprint == _blas_fingerprint()
    if not exact:
        print(f"{name}: this BLAS rounds products differently from the one that wrote the "
              "pins; comparing to a tight tolerance instead of bit for bit")
    for key, array in zip(keys, got):
        want = pins[key]
        assert array.dtype == want.dtype and array.shape == want.shape, key
        if exact:
            assert array.tobytes() == want.tobytes(), (
                f"{key}: max |diff| {np.max(np.abs(array - want), initial=0.0):.3g}")
        else:
            rtol = 1e-5 if array.dtype == np.float32 else 1e-10
            np.testing.assert_allclose(array, want, rtol=rtol, atol=rtol, err_msg=key)


def test_pins_cover_distinct_runs() -> None:
    # The cases are not accidentally the same run: the pinned parameters differ pairwise.
    pins, _ = _load_pins()
    firsts = {k.split("/")[0]: pins[k].tobytes() for k in pins if k.endswith("/0")}
    assert len(firsts) == len(CASES)
    assert len(set(firsts.values())) == len(firsts)


def _write_pins() -> None:  # pragma: no cover - run by hand: python tests/optim/test_pinned_runs.py
    arrays: dict[str, np.ndarray] = {"__fingerprint__": np.array(_blas_fingerprint())}
    for name, case in CASES.items():
        for i, a in enumerate(case()):
            arrays[f"{name}/{i}"] = np.asarray(a)
    PINS.parent.mkdir(exist_ok=True)
    np.savez(PINS, **arrays)
    print(f"wrote {len(arrays) - 1} arrays for {len(CASES)} cases to {PINS}")


if __name__ == "__main__":  # pragma: no cover
    if "--write" in sys.argv:
        _write_pins()
    else:
        print("python tests/optim/test_pinned_runs.py --write  # overwrite the pins")
