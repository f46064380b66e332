"""Optimisation test problems with known optima, for comparing step sizes.

Each builder returns a :class:`Problem`: the variables (float64 tensors that require grad),
the objective as a closure built only from descend's tensor operations (so every optimizer
and step rule runs on it), and its optimum computed *independently* with NumPy/SciPy
(closed forms, least squares, linear programming, quasi-Newton followed by exact polishing
on the identified active set). The optimum is never computed with descend itself, so a
problem can be used to test descend.

Convex, smooth:       ``least_squares``, ``ridge``, ``logistic_regression``
Convex, non-smooth:   ``lasso``, ``svm``, ``max_affine``
Non-convex:           ``rosenbrock``, ``saddle``, ``mlp_digits`` (f* unknown)
Moré-Garbow-Hillstrom (1981) unconstrained test set (:data:`MGH_PROBLEMS`): nonlinear least
squares f(x) = sum_i r_i(x)^2 from the paper's standard starting points, with known optima.

>>> p = PROBLEMS["leastsq"]()
>>> opt = ds.optim.GD(p.params, lr=1.0 / p.lipschitz)
>>> for _ in range(100):
...     opt.step(p.loss)
>>> p.gap() < 1e-8
True
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .autodiff.graph import no_grad
from .autodiff.ops import (
    absolute,
    amax,
    concatenate,
    cross_entropy_per_sample,
    exp,
    linear,
    matmul,
    relu,
    softplus,
    stack,
)
from .autodiff.tensor import Tensor
from .backend import check_seed
from .checks import check_count, check_step_size
from .data import Standardizer, load_digits
from .errors import ConfigError

__all__ = [
    "MGH_PROBLEMS",
    "PROBLEMS",
    "Problem",
    "beale",
    "box3d",
    "brown_badly_scaled",
    "broyden_banded",
    "broyden_tridiagonal",
    "discrete_boundary_value",
    "discrete_integral_equation",
    "extended_powell",
    "extended_rosenbrock",
    "lasso",
    "least_squares",
    "linear_full_rank",
    "logistic_regression",
    "make_problem",
    "max_affine",
    "mlp_digits",
    "penalty1",
    "powell_singular",
    "quadratic_2d",
    "ridge",
    "rosenbrock",
    "saddle",
    "svm",
    "variably_dimensioned",
    "wood",
]

Arrays = list[np.ndarray]


@dataclass
class Problem:
    """An objective, its variables, its starting point and its known optimum.

    Attributes
    ----------
    name : str
        The registry name (``PROBLEMS[name]`` builds it).
    params : list of Tensor
        The variables: float64 tensors with ``requires_grad=True``; optimizers move them.
    loss : callable () -> Tensor
        The closure: the objective at the current ``params``, built from descend tensor
        operations, *without* calling backward (the ``opt.step(closure)`` convention).
    f_star : float or None
        The optimal value (the global minimum), or None where it is unknown.
    x_star : list of ndarray or None
        A minimiser, one array per parameter (None where unknown).
    smooth : bool
        Whether the objective is differentiable with a Lipschitz gradient on its level sets.
    convex : bool
        Whether it is convex.
    lipschitz : float or None
        A global Lipschitz constant L of the gradient (so 1/L is the classical constant step),
        where one is known.
    description : str
        One line: the formula and the data.
    strong_convexity : float or None
        A global strong-convexity modulus mu where known (mu = 0 is given as None).
    subgradient_bound : float or None
        G with ||g|| <= G for every (sub)gradient the engine returns, where known (the G of
        the subgradient method's guarantee).
    numpy_objective : callable (list of ndarray) -> float, or None
        An independent NumPy implementation of the same objective; the optimum is computed
        with it (and tests compare it with ``loss``).
    x0 : list of ndarray
        The starting point; :meth:`reset` puts it back.
    """

    name: str
    params: list[Tensor]
    loss: Callable[[], Tensor]
    f_star: float | None
    x_star: Arrays | None
    smooth: bool
    convex: bool
    lipschitz: float | None
    description: str
    strong_convexity: float | None = None
    subgradient_bound: float | None = None
    numpy_objective: Callable[[Arrays], float] | None = None
    x0: Arrays = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.x0:
            self.x0 = [p.data.copy() for p in self.params]

    def reset(self) -> None:
        """Put the variables back at the starting point (fresh arrays, no gradients)."""
        for p, x in zip(self.params, self.x0):
            p.data = x.copy()
            p.grad = None

    def set_point(self, point: Arrays) -> None:
        """Move the variables to ``point`` (copied), e.g. ``p.set_point(p.x_star)``."""
        if len(point) != len(self.params):
            raise ConfigError(
                f"{self.name}: a point needs {len(self.params)} arrays, got {len(point)}"
            )
        for p, x in zip(self.params, point):
            arr = np.array(x, dtype=p.data.dtype)
            if arr.shape != p.shape:
                raise ConfigError(f"{self.name}: expected shape {p.shape}, got {arr.shape}")
            p.data = arr
            p.grad = None

    def point(self) -> Arrays:
        """A copy of the current variables."""
        return [p.data.copy() for p in self.params]

    def value(self) -> float:
        """f at the current variables (forward only)."""
        with no_grad():
            return float(self.loss().data)

    def gap(self) -> float | None:
        """f - f* at the current variables, or None when f* is unknown."""
        if self.f_star is None:
            return None
        return self.value() - self.f_star

    def distance(self, point: Arrays | None = None) -> float | None:
        """||x - x*|| (all parameters together) at ``point`` or the current variables."""
        if self.x_star is None:
            return None
        xs = self.point() if point is None else point
        return math.sqrt(sum(float(np.sum((a - b) ** 2)) for a, b in zip(xs, self.x_star)))

    def __repr__(self) -> str:
        kind = ("convex" if self.convex else "non-convex") + (
            ", smooth" if self.smooth else ", non-smooth"
        )
        f_star = "unknown" if self.f_star is None else f"{self.f_star:.10g}"
        return f"Problem({self.name!r}: {kind}, f* = {f_star})"


# ------------------------------------------------------------------------------ helpers
#: Largest size a test problem takes: a dimension beyond it cannot be allocated usefully.
_MAX_SIZE = 10**7


def _size(name: str, value: object, minimum: int) -> int:
    return check_count(f"{name} (a test problem's size)", value, minimum, _MAX_SIZE)


def _variable(x: np.ndarray) -> Tensor:
    return Tensor(np.array(x, dtype=np.float64), requires_grad=True)


def _lambda_max(M: np.ndarray) -> float:
    return float(np.linalg.eigvalsh(M)[-1])


def _lambda_min(M: np.ndarray) -> float:
    return float(np.linalg.eigvalsh(M)[0])


def _regression_data(n: int, d: int, seed: int, sparse: bool = False):
    rng = np.random.default_rng(check_seed(seed))
    A = rng.standard_normal((n, d))
    x_true = rng.standard_normal(d)
    if sparse:  # only a quarter of the coefficients matter
        x_true[rng.permutation(d)[max(1, d // 4):]] = 0.0
    b = A @ x_true + 0.1 * rng.standard_normal(n)
    return A, b


# ------------------------------------------------------------------------------ smooth convex
def least_squares(n: int = 200, d: int = 20, seed: int = 0) -> Problem:
    """f(x) = 1/(2n) ||A x - b||^2 with Gaussian A (n, d) and b = A x_true + noise.

    x* from ``numpy.linalg.lstsq``; L = lambda_max(A^T A)/n, mu = lambda_min(A^T A)/n
    (positive when n >= d). Start: x = 0.
    """
    n = _size("n", n, 1)
    d = _size("d", d, 1)
    A, b = _regression_data(n, d, seed)
    x_star = np.linalg.lstsq(A, b, rcond=None)[0]

    def reference(xs: Arrays) -> float:
        r = A @ xs[0] - b
        return float(r @ r) / (2 * n)

    x = _variable(np.zeros(d))
    A_t, b_t = Tensor(A), Tensor(b)

    def loss() -> Tensor:
        r = matmul(A_t, x) - b_t
        return (r * r).sum() * (0.5 / n)

    H = A.T @ A / n
    mu = _lambda_min(H)
    return Problem(
        "leastsq", [x], loss, reference([x_star]), [x_star], smooth=True, convex=True,
        lipschitz=_lambda_max(H),
        description=f"least squares 1/(2n)||Ax - b||^2, A Gaussian {n}x{d}",
        strong_convexity=mu if mu > 1e-12 else None, numpy_objective=reference,
    )


def quadratic_2d(kappa: float = 50.0) -> Problem:
    """f(x, y) = (x^2 + kappa y^2) / 2: the ill-conditioned quadratic of the textbook
    pictures (condition number kappa, 50 by default), drawn on its contours by ``descend
    compare --path-plot``. f* = 0 at the origin, L = kappa, mu = 1; start (10, 1).

    Steepest descent with exact steps turns by a right angle at every step and converges
    linearly with ratio ((kappa - 1) / (kappa + 1))^2 in f (N&W Theorem 3.3); a constant
    step near 2/L zig-zags across the valley's narrow axis.
    """
    kappa = check_step_size("kappa", kappa)
    if kappa < 1:
        raise ConfigError(f"kappa (the condition number) must be >= 1, got {kappa!r}")
    z = _variable(np.array([10.0, 1.0]))
    scale = Tensor(np.array([1.0, kappa]))

    def reference(xs: Arrays) -> float:
        u, v = xs[0]
        return float(0.5 * (u * u + kappa * v * v))

    def loss() -> Tensor:
        return (z * z * scale).sum() * 0.5

    return Problem(
        "quad2d", [z], loss, 0.0, [np.zeros(2)], smooth=True, convex=True, lipschitz=kappa,
        description=f"(x^2 + {kappa:g} y^2)/2, condition number {kappa:g}, from (10, 1)",
        strong_convexity=1.0, numpy_objective=reference,
    )


def ridge(n: int = 200, d: int = 20, lam: float = 0.1, seed: int = 0) -> Problem:
    """f(x) = 1/(2n) ||A x - b||^2 + (lam/2) ||x||^2.

    Closed form x* = (A^T A/n + lam I)^{-1} A^T b/n; L = lambda_max(A^T A)/n + lam,
    mu = lambda_min(A^T A)/n + lam. Start: x = 0.
    """
    n = _size("n", n, 1)
    d = _size("d", d, 1)
    lam = check_step_size("lam", lam, allow_zero=True)
    A, b = _regression_data(n, d, seed)
    H = A.T @ A / n
    x_star = np.linalg.solve(H + lam * np.eye(d), A.T @ b / n)

    def reference(xs: Arrays) -> float:
        r = A @ xs[0] - b
        return float(r @ r) / (2 * n) + 0.5 * lam * float(xs[0] @ xs[0])

    x = _variable(np.zeros(d))
    A_t, b_t = Tensor(A), Tensor(b)

    def loss() -> Tensor:
        r = matmul(A_t, x) - b_t
        return (r * r).sum() * (0.5 / n) + (x * x).sum() * (0.5 * lam)

    mu = _lambda_min(H) + lam
    return Problem(
        "ridge", [x], loss, reference([x_star]), [x_star], smooth=True, convex=True,
        lipschitz=_lambda_max(H) + lam,
        description=f"ridge 1/(2n)||Ax - b||^2 + {lam:g}/2 ||x||^2, A Gaussian {n}x{d}",
        strong_convexity=mu if mu > 1e-12 else None, numpy_objective=reference,
    )


def _logistic_np(X: np.ndarray, y: np.ndarray, lam: float):
    """Value, gradient and Hessian of the regularised logistic loss in NumPy (z = [w, b])."""
    n, d = X.shape
    Z = np.hstack([X, np.ones((n, 1))])
    reg = np.r_[np.ones(d), 0.0]  # the bias is not penalised

    def value(z: np.ndarray) -> float:
        m = -y * (Z @ z)
        return float(np.mean(np.logaddexp(0.0, m))) + 0.5 * lam * float(np.sum(reg * z * z))

    def grad(z: np.ndarray) -> np.ndarray:
        s = 0.5 * (1.0 + np.tanh(0.5 * (-y * (Z @ z))))  # sigmoid(-y z), overflow-free
        return Z.T @ (-y * s) / n + lam * reg * z

    def hess(z: np.ndarray) -> np.ndarray:
        s = 0.5 * (1.0 + np.tanh(0.5 * (Z @ z)))
        return (Z * (s * (1 - s))[:, None]).T @ Z / n + lam * np.diag(reg)

    return value, grad, hess, Z


def logistic_regression(n: int = 500, d: int = 10, lam: float = 1e-2, seed: int = 0) -> Problem:
    """f(w, b) = mean_i log(1 + exp(-y_i (x_i . w + b))) + (lam/2) ||w||^2.

    Gaussian features, labels y in {-1, +1} from a random linear teacher with 10% of them
    flipped (so the data are not separable). With lam > 0 the optimum is unique. It is
    computed with SciPy's L-BFGS-B (gtol 1e-12) on a NumPy implementation, then polished by
    Newton steps with the exact Hessian until the gradient vanishes to rounding. The loss is
    written with the stable ``softplus`` primitive. L = lambda_max([X 1]^T [X 1])/(4n) + lam.
    Start: w = 0, b = 0 (f = log 2).
    """
    from scipy.optimize import minimize

    n = _size("n", n, 2)
    d = _size("d", d, 1)
    lam = check_step_size("lam", lam)
    rng = np.random.default_rng(check_seed(seed))
    X = rng.standard_normal((n, d))
    teacher = rng.standard_normal(d)
    y = np.where(X @ teacher + 0.5 > 0, 1.0, -1.0)
    flip = rng.random(n) < 0.1
    y[flip] = -y[flip]
    value, grad, hess, Z = _logistic_np(X, y, lam)

    res = minimize(value, np.zeros(d + 1), jac=grad, method="L-BFGS-B",
                   options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000})
    z = res.x
    for _ in range(20):  # Newton polishing: quadratic convergence from L-BFGS's answer
        g = grad(z)
        if np.linalg.norm(g) < 1e-15:
            break
        z = z - np.linalg.solve(hess(z), g)
    x_star = [z[:d].copy(), z[d:].copy()]

    def reference(xs: Arrays) -> float:
        return value(np.r_[xs[0], xs[1]])

    w = _variable(np.zeros(d))
    bias = _variable(np.zeros(1))
    X_t, y_t = Tensor(X), Tensor(y)

    def loss() -> Tensor:
        scores = matmul(X_t, w) + bias
        return softplus(-(y_t * scores)).mean() + (w * w).sum() * (0.5 * lam)

    return Problem(
        "logreg", [w, bias], loss, reference(x_star), x_star, smooth=True, convex=True,
        lipschitz=_lambda_max(Z.T @ Z) / (4 * n) + lam,
        description=f"L2-regularised logistic regression (lam={lam:g}), {n} samples, {d} "
        "features, 10% label noise",
        strong_convexity=None, numpy_objective=reference,
    )


# ------------------------------------------------------------------------------ non-smooth convex
def lasso(n: int = 100, d: int = 20, lam: float = 0.1, seed: int = 0) -> Problem:
    """f(x) = 1/(2n) ||A x - b||^2 + lam ||x||_1, with a sparse x_true.

    The optimum: L-BFGS-B on the smooth bound-constrained reformulation x = u - v,
    u, v >= 0 (objective 1/(2n)||A(u - v) - b||^2 + lam 1.(u + v)), then polished exactly:
    with the support S and signs s read off, x_S solves (A_S^T A_S/n) x_S = A_S^T b/n - lam s,
    accepted when the optimality conditions hold (signs kept, |A_j^T r/n| <= lam off S).
    The engine's choice |x|'(0) = 0 picks 0 from [-1, 1], so the gradient of ``loss`` is a
    valid subgradient everywhere. ``lipschitz`` is None (not smooth); the subgradients are
    unbounded globally, so ``subgradient_bound`` is None. Start: x = 0.
    """
    from scipy.optimize import minimize

    n = _size("n", n, 1)
    d = _size("d", d, 1)
    lam = check_step_size("lam", lam)
    A, b = _regression_data(n, d, seed, sparse=True)

    def reference(xs: Arrays) -> float:
        r = A @ xs[0] - b
        return float(r @ r) / (2 * n) + lam * float(np.sum(np.abs(xs[0])))

    def split_value(uv: np.ndarray) -> tuple[float, np.ndarray]:
        u, v = uv[:d], uv[d:]
        r = A @ (u - v) - b
        g = A.T @ r / n
        return float(r @ r) / (2 * n) + lam * float(uv.sum()), np.r_[g + lam, -g + lam]

    res = minimize(split_value, np.zeros(2 * d), jac=True, method="L-BFGS-B",
                   bounds=[(0.0, None)] * (2 * d),
                   options={"gtol": 1e-14, "ftol": 1e-16, "maxiter": 50_000})
    x_opt = res.x[:d] - res.x[d:]
    x_opt = _polish_lasso(A, b, lam, x_opt)

    x = _variable(np.zeros(d))
    A_t, b_t = Tensor(A), Tensor(b)

    def loss() -> Tensor:
        r = matmul(A_t, x) - b_t
        return (r * r).sum() * (0.5 / n) + absolute(x).sum() * lam

    return Problem(
        "lasso", [x], loss, reference([x_opt]), [x_opt], smooth=False, convex=True,
        lipschitz=None,
        description=f"lasso 1/(2n)||Ax - b||^2 + {lam:g}||x||_1, A Gaussian {n}x{d}",
        numpy_objective=reference,
    )


def _polish_lasso(A: np.ndarray, b: np.ndarray, lam: float, x: np.ndarray) -> np.ndarray:
    """Solve the lasso exactly on the support and signs of ``x``; keep ``x`` if that fails."""
    n = len(b)
    scale = max(1.0, float(np.max(np.abs(x))))
    support = np.abs(x) > 1e-7 * scale
    if not support.any():
        return np.zeros_like(x) if np.max(np.abs(A.T @ b / n)) <= lam else x
    s = np.sign(x[support])
    As = A[:, support]
    try:
        xs = np.linalg.solve(As.T @ As / n, As.T @ b / n - lam * s)
    except np.linalg.LinAlgError:
        return x
    cand = np.zeros_like(x)
    cand[support] = xs
    corr = A.T @ (A @ cand - b) / n
    if np.all(np.sign(xs) == s) and np.all(np.abs(corr[~support]) <= lam * (1 + 1e-9)):
        return cand
    return x


def svm(n: int = 200, d: int = 5, lam: float = 0.1, seed: int = 0) -> Problem:
    """Linear soft-margin SVM: f(w, b) = (lam/2)||w||^2 + mean_i max(0, 1 - y_i (x_i . w + b)).

    Two overlapping Gaussian classes. The hinge is ``relu(1 - margin)``: at the margin the
    engine takes the subgradient 0 (API.md), a valid choice from [0, 1].

    The optimum is found in two stages. First an approximate point: L-BFGS-B on the hinge
    smoothed as tau log(1 + exp(u/tau)), with tau decreasing from 0.1 to 1e-6 (warm
    started; d + 1 variables). Then the exact optimum on the sets that point identifies
    (margin points M, points inside the margin V): w = (sum_V y_i x_i/n +
    sum_M beta_i y_i x_i)/lam, y_i(x_i.w + b) = 1 on M and sum_V y_i/n + sum_M beta_i y_i = 0,
    a linear system in (beta, b), accepted only when its solution satisfies every optimality
    condition (0 <= beta_i <= 1/n, the sets unchanged). Should that fail, the dual QP
    max sum a - ||sum a_i y_i x_i||^2/(2 lam), 0 <= a_i <= 1/n, sum a_i y_i = 0 is solved with
    SciPy's SLSQP and polished the same way. f* is the primal value at the optimum.
    G = 2 lam ||w*|| + max ||x_i|| + 1 bounds the subgradients near x*. Start: w = 0, b = 0.
    """
    n = _size("n", n, 2)
    d = _size("d", d, 1)
    lam = check_step_size("lam", lam)
    rng = np.random.default_rng(check_seed(seed))
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    centre = rng.standard_normal(d)
    centre *= 1.0 / np.linalg.norm(centre)
    X = rng.standard_normal((n, d)) + y[:, None] * centre  # overlapping classes

    def reference(xs: Arrays) -> float:
        w, bias = xs[0], float(xs[1][0])
        hinge = np.maximum(0.0, 1.0 - y * (X @ w + bias))
        return 0.5 * lam * float(w @ w) + float(np.mean(hinge))

    w, bias = _svm_smoothed(X, y, lam)
    w, bias, ok = _polish_svm(X, y, lam, w, bias)
    if not ok:
        w, bias = _svm_dual(X, y, lam)
        w, bias, _ = _polish_svm(X, y, lam, w, bias)
    x_star = [w, np.array([bias])]

    w_t = _variable(np.zeros(d))
    b_t = _variable(np.zeros(1))
    X_t, y_t = Tensor(X), Tensor(y)

    def loss() -> Tensor:
        margins = y_t * (matmul(X_t, w_t) + b_t)
        return relu(1.0 - margins).mean() + (w_t * w_t).sum() * (0.5 * lam)

    G = lam * float(np.linalg.norm(w)) * 2 + float(np.max(np.linalg.norm(X, axis=1))) + 1.0
    return Problem(
        "svm", [w_t, b_t], loss, reference(x_star), x_star, smooth=False, convex=True,
        lipschitz=None,
        description=f"linear SVM {lam:g}/2||w||^2 + mean hinge, {n} samples, {d} features",
        subgradient_bound=G, numpy_objective=reference,
    )


def _svm_smoothed(X: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """Minimise the SVM objective with the hinge smoothed at decreasing temperatures."""
    from scipy.optimize import minimize

    n, d = X.shape
    Z = np.hstack([X, np.ones((n, 1))]) * y[:, None]
    reg = np.r_[np.ones(d), 0.0]
    z = np.zeros(d + 1)
    for tau in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6):
        def value(v: np.ndarray, tau: float = tau) -> tuple[float, np.ndarray]:
            u = (1.0 - Z @ v) / tau
            smooth = tau * np.logaddexp(0.0, u)
            weight = 0.5 * (1.0 + np.tanh(0.5 * u))  # sigmoid(u), overflow-free
            f = float(np.mean(smooth)) + 0.5 * lam * float(np.sum(reg * v * v))
            return f, -(Z.T @ weight) / n + lam * reg * v

        z = minimize(value, z, jac=True, method="L-BFGS-B",
                     options={"gtol": 1e-13, "ftol": 1e-16, "maxiter": 5000}).x
    return z[:d], float(z[d])


def _svm_dual(X: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """The SVM's dual QP with SLSQP (slower; the fallback)."""
    from scipy.optimize import minimize

    n = len(y)
    Yx = X * y[:, None]
    Q = Yx @ Yx.T / lam

    def dual(a: np.ndarray) -> tuple[float, np.ndarray]:  # negated, to minimise
        Qa = Q @ a
        return 0.5 * float(a @ Qa) - float(a.sum()), Qa - 1.0

    res = minimize(dual, np.full(n, 0.5 / n), jac=True, method="SLSQP",
                   bounds=[(0.0, 1.0 / n)] * n,
                   constraints=[{"type": "eq", "fun": lambda a: float(a @ y),
                                 "jac": lambda a: y}],
                   options={"ftol": 1e-15, "maxiter": 2000})
    alpha = np.clip(res.x, 0.0, 1.0 / n)
    w = Yx.T @ alpha / lam
    free = (alpha > 1e-6 / n) & (alpha < (1 - 1e-6) / n)
    if free.any():
        return w, float(np.median(y[free] - X[free] @ w))
    return w, _best_bias(X, y, w)


def _best_bias(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """The bias minimising the mean hinge for fixed w (a 1-D convex piecewise-linear
    problem: the minimum lies at a kink, b = y_i - x_i . w for some i)."""
    cands = y - X @ w
    vals = [np.mean(np.maximum(0.0, 1.0 - y * (X @ w + c))) for c in cands]
    return float(cands[int(np.argmin(vals))])


def _polish_svm(X, y, lam, w, bias):
    """Exact SVM optimum on the active sets identified by (w, bias), and whether it
    satisfies the optimality conditions (if not, (w, bias) come back unchanged)."""
    n = len(y)
    margin = y * (X @ w + bias)
    for window in (1e-6, 1e-5, 1e-4, 1e-7, 1e-3):
        on = np.abs(margin - 1.0) <= window
        inside = margin < 1.0 - window
        m = int(on.sum())
        if m == 0:
            continue
        Xm, ym = X[on], y[on]
        v_sum = (y[inside][:, None] * X[inside]).sum(axis=0) / n  # sum_V y_i x_i / n
        # unknowns (beta_M, b): for j in M, y_j x_j.(v_sum + sum_M beta_i y_i x_i)/lam
        # + y_j b = 1, and sum_V y_i/n + sum_M beta_i y_i = 0
        K = (ym[:, None] * Xm) @ (ym[:, None] * Xm).T / lam
        system = np.vstack([np.hstack([K, ym[:, None]]), np.r_[ym, 0.0][None, :]])
        rhs = np.r_[1.0 - ym * (Xm @ v_sum) / lam, -float(y[inside].sum()) / n]
        sol, *_ = np.linalg.lstsq(system, rhs, rcond=None)
        if not np.allclose(system @ sol, rhs, rtol=0.0, atol=1e-10):
            continue
        beta, b_new = sol[:m], float(sol[m])
        w_new = (v_sum + (beta * ym) @ Xm) / lam
        new_margin = y * (X @ w_new + b_new)
        ok = (
            np.all(beta >= -1e-12) and np.all(beta <= 1.0 / n + 1e-12)
            and np.all(new_margin[inside] <= 1.0 + 1e-9)
            and np.all(new_margin[~inside & ~on] >= 1.0 - 1e-9)
        )
        if ok:
            return w_new, b_new, True
    return w, bias, False


def max_affine(m: int = 50, d: int = 10, seed: int = 0) -> Problem:
    """f(x) = max_i (a_i . x + b_i), i = 1..m: convex, piecewise linear, non-smooth.

    Bounded below by construction: the a_i are centred (their mean is 0, so 0 lies in their
    convex hull and f(x) >= mean_i b_i); with m > d Gaussian slopes the hull is
    full-dimensional and f has a minimiser. The optimum is the linear program
    min t s.t. a_i . x + b_i <= t, solved with ``scipy.optimize.linprog`` (HiGHS).
    G = max_i ||a_i|| bounds every subgradient (a tie's shared gradient is a convex
    combination of the a_i). Start: x = 0.
    """
    from scipy.optimize import linprog

    m = _size("m", m, 2)
    d = _size("d", d, 1)
    rng = np.random.default_rng(check_seed(seed))
    A = rng.standard_normal((m, d))
    A -= A.mean(axis=0)
    b = rng.standard_normal(m)

    def reference(xs: Arrays) -> float:
        return float(np.max(A @ xs[0] + b))

    # variables (x, t): minimise t subject to A x - t <= -b
    res = linprog(np.r_[np.zeros(d), 1.0], A_ub=np.hstack([A, -np.ones((m, 1))]), b_ub=-b,
                  bounds=[(None, None)] * (d + 1), method="highs")
    if res.status != 0:
        raise ConfigError(f"max_affine(m={m}, d={d}, seed={seed}): the LP failed: {res.message}")
    x_star = res.x[:d].copy()

    x = _variable(np.zeros(d))
    A_t, b_t = Tensor(A), Tensor(b)

    def loss() -> Tensor:
        return amax(matmul(A_t, x) + b_t)

    return Problem(
        "maxaffine", [x], loss, reference([x_star]), [x_star], smooth=False, convex=True,
        lipschitz=None,
        description=f"max of {m} affine functions in {d} dimensions (an LP)",
        subgradient_bound=float(np.max(np.linalg.norm(A, axis=1))), numpy_objective=reference,
    )


# ------------------------------------------------------------------------------ non-convex
def rosenbrock(a: float = 1.0, b: float = 100.0) -> Problem:
    """f(x, y) = (a - x)^2 + b (y - x^2)^2: the curved valley. f* = 0 at (a, a^2);
    start (-1.2, 1). Smooth but non-convex, with no global Lipschitz constant for the
    gradient (``lipschitz`` is None)."""
    a = float(a)
    b = check_step_size("b", b)
    if not math.isfinite(a):
        raise ConfigError(f"a must be finite, got {a!r}")
    z = _variable(np.array([-1.2, 1.0]))

    def reference(xs: Arrays) -> float:
        u, v = xs[0]
        return float((a - u) ** 2 + b * (v - u * u) ** 2)

    def loss() -> Tensor:
        u, v = z[0], z[1]
        return (a - u) ** 2 + (v - u * u) ** 2 * b

    return Problem(
        "rosenbrock", [z], loss, 0.0, [np.array([a, a * a])], smooth=True, convex=False,
        lipschitz=None, description=f"Rosenbrock (a={a:g}, b={b:g}) from (-1.2, 1)",
        numpy_objective=reference,
    )


def saddle(start: tuple[float, float] = (1e-3, 1.0)) -> Problem:
    """f(x, y) = x^4/4 - x^2/2 + y^2/2: a strict saddle at (0, 0) (Hessian diag(-1, 1)) and
    two minima (+-1, 0) with f* = -1/4. Started near the saddle, at (1e-3, 1) by default:
    gradient descent first slides towards the saddle along y, then escapes along x at a rate
    set by the negative curvature. ``x_star`` is the minimum on the starting side."""
    if (not isinstance(start, tuple | list | np.ndarray) or len(start) != 2
            or not all(isinstance(s, numbers.Real) and not isinstance(s, bool)
                       and math.isfinite(float(s)) for s in start)):
        raise ConfigError(f"start must be two finite numbers, got {start!r}")
    z = _variable(np.array([float(start[0]), float(start[1])]))

    def reference(xs: Arrays) -> float:
        u, v = xs[0]
        return float(u**4 / 4 - u**2 / 2 + v**2 / 2)

    def loss() -> Tensor:
        u, v = z[0], z[1]
        return u**4 * 0.25 - u * u * 0.5 + v * v * 0.5

    side = 1.0 if start[0] >= 0 else -1.0
    return Problem(
        "saddle", [z], loss, -0.25, [np.array([side, 0.0])], smooth=True, convex=False,
        lipschitz=None,
        description="x^4/4 - x^2/2 + y^2/2: strict saddle at 0, minima (+-1, 0)",
        numpy_objective=reference,
    )


def mlp_digits(hidden: int = 32, seed: int = 0, samples: int | None = None) -> Problem:
    """Mean cross-entropy of a one-hidden-layer ReLU network 64-hidden-10 on the built-in
    digits (standardised pixels, float64), full batch. f* is unknown (None): the loss can
    approach 0 on the training set. Weights: He-uniform from ``seed``; biases 0.
    ``samples`` keeps the first ``samples`` images (all 1,797 by default)."""

    hidden = _size("hidden", hidden, 1)
    data = load_digits(np.float64)
    X, y = data.X, data.y
    if samples is not None:
        samples = _size("samples", samples, 2)
        X, y = X[:samples], y[:samples]
    X = Standardizer().fit(X).transform(X).astype(np.float64)
    rng = np.random.default_rng(check_seed(seed))
    k = data.n_classes or 10

    def he(fan_out: int, fan_in: int) -> np.ndarray:
        bound = math.sqrt(6.0 / fan_in)
        return rng.uniform(-bound, bound, size=(fan_out, fan_in))

    W1 = _variable(he(hidden, X.shape[1]))
    b1 = _variable(np.zeros(hidden))
    W2 = _variable(he(k, hidden))
    b2 = _variable(np.zeros(k))
    X_t = Tensor(X)
    targets = np.asarray(y, dtype=np.int64)

    def loss() -> Tensor:
        h = relu(linear(X_t, W1, b1))
        return cross_entropy_per_sample(linear(h, W2, b2), targets).mean()

    return Problem(
        "mlp", [W1, b1, W2, b2], loss, None, None, smooth=False, convex=False, lipschitz=None,
        description=f"MLP 64-{hidden}-10 (ReLU) on digits, {len(X)} samples, cross-entropy",
    )


# ------------------------------------------------------------------- Moré-Garbow-Hillstrom
# J. J. Moré, B. S. Garbow and K. E. Hillstrom, "Testing unconstrained optimization software",
# ACM Trans. Math. Software 7(1), 1981, pp. 17-41. Every function is f(x) = sum_i r_i(x)^2 with
# the paper's residuals r_i and standard starting point x0 (the numbers in the docstrings are
# the paper's problem numbers). Each residual vector is written once, generic over the array
# namespace: ``residuals(x, ops)`` with ``ops`` an :class:`_ArrayOps` (descend's operations on
# tensors for the closure, NumPy's on arrays for ``numpy_objective`` and for computing the
# optimum with SciPy where it is not known in closed form). Constants are NumPy arrays written
# on the left of ``@`` or on either side of arithmetic: a tensor operand makes the operation
# descend's (ndarray defers to Tensor's reflected operators).

#: A residual vector's argument and value: a descend tensor or a NumPy array.
Vector = Tensor | np.ndarray


class _ArrayOps(NamedTuple):
    """The functions a residual vector needs beyond arithmetic, indexing, ``sum`` and
    ``reshape`` (which tensors and arrays share)."""

    stack: Callable[..., Any]
    concatenate: Callable[..., Any]
    exp: Callable[..., Any]


_TENSOR_OPS = _ArrayOps(stack, concatenate, exp)
_NUMPY_OPS = _ArrayOps(np.stack, np.concatenate, np.exp)

#: ``residuals(x, ops)``: the residual vector at ``x`` computed with ``ops``.
Residuals = Callable[[Vector, _ArrayOps], Vector]


def _mgh(name: str, number: int, residuals: Residuals, x0: np.ndarray, f_star: float,
         x_star: np.ndarray | None, description: str, *, convex: bool = False,
         lipschitz: float | None = None) -> Problem:
    """A sum-of-squares problem from its residuals: the closure runs them on descend tensors,
    ``numpy_objective`` on NumPy arrays."""
    z = _variable(np.asarray(x0, dtype=np.float64))

    def reference(xs: Arrays) -> float:
        r = residuals(np.asarray(xs[0], dtype=np.float64), _NUMPY_OPS)
        return float(r @ r)

    def loss() -> Tensor:
        r = residuals(z, _TENSOR_OPS)
        return (r * r).sum()

    return Problem(
        name, [z], loss, float(f_star), None if x_star is None else [np.asarray(x_star)],
        smooth=True, convex=convex, lipschitz=lipschitz,
        description=f"MGH {number}: {description}, n={z.size}, from the standard x0",
        numpy_objective=reference,
    )


def _solve_residuals(residuals: Residuals, x0: np.ndarray, name: str) -> np.ndarray:
    """A zero of a square system of residuals (SciPy's hybrid Powell method on their NumPy
    form), checked."""
    from scipy.optimize import root

    def residuals_np(x: np.ndarray) -> np.ndarray:
        return residuals(x, _NUMPY_OPS)

    res = root(residuals_np, x0, method="hybr", options={"xtol": 1e-15})
    r = residuals_np(res.x)
    if not float(r @ r) < 1e-24:  # pragma: no cover - the systems below all have a root
        raise ConfigError(f"{name}: no zero of the residuals was found ({res.message})")
    return res.x


def _check_dim(name: str, n: int, minimum: int, multiple: int = 1) -> int:
    n = _size(name, n, minimum)
    if n % multiple:
        raise ConfigError(f"{name} must be a multiple of {multiple}, got {n}")
    return n


def extended_rosenbrock(n: int = 10) -> Problem:
    """MGH 21, extended Rosenbrock: r_{2i-1} = 10 (x_{2i} - x_{2i-1}^2), r_{2i} = 1 - x_{2i-1}.
    x0 = (-1.2, 1, -1.2, 1, ...); f* = 0 at (1, ..., 1). n even."""
    n = _check_dim("n", n, 2, 2)

    def residuals(x: Vector, ops: _ArrayOps) -> Vector:
        odd, even = x[0::2], x[1::2]
        return ops.concatenate([(even - odd * odd) * 10.0, 1.0 - odd])

    return _mgh("ext-rosenbrock", 21, residuals, np.tile([-1.2, 1.0], n // 2), 0.0,
                np.ones(n), "extended Rosenbrock")


def beale() -> Problem:
    """MGH 5, Beale: r_i = y_i - x_1 (1 - x_2^i), y = (1.5, 2.25, 2.625). x0 = (1, 1);
    f* = 0 at (3, 0.5)."""
    y = (1.5, 2.25, 2.625)

    def residuals(x: Vector, ops: _ArrayOps) -> Vector:
        u, v = x[0], x[1]
        return ops.stack([y[0] - u * (1.0 - v), y[1] - u * (1.0 - v * v),
                          y[2] - u * (1.0 - v * v * v)])

    return _mgh("beale", 5, residuals, np.array([1.0, 1.0]), 0.0, np.array([3.0, 0.5]),
                "Beale")


def powell_singular(n: int = 4) -> Problem:
    """MGH 13 (n = 4) and 22 (extended, n a multiple of 4), Powell singular: per block of
    four, r = (x1 + 10 x2, sqrt(5) (x3 - x4), (x2 - 2 x3)^2, sqrt(10) (x1 - x4)^2).
    x0 = (3, -1, 0, 1, ...); f* = 0 at 0, where the Hessian is singular (so convergence is
    only linear for Newton-like methods)."""
    n = _check_dim("n", n, 4, 4)
    r5, r10 = math.sqrt(5.0), math.sqrt(10.0)

    def residuals(x: Vector, ops: _ArrayOps) -> Vector:
        a, b, c, d = x[0::4], x[1::4], x[2::4], x[3::4]
        return ops.concatenate([a + b * 10.0, (c - d) * r5, (b - c * 2.0) ** 2,
                                (a - d) ** 2 * r10])

    name, number = ("powell-singular", 13) if n == 4 else ("ext-powell", 22)
    return _mgh(name, number, residuals, np.tile([3.0, -1.0, 0.0, 1.0], n // 4), 0.0,
                np.zeros(n), "Powell singular" if n == 4 else "extended Powell singular")


def extended_powell(n: int = 12) -> Problem:
    """MGH 22: :func:`powell_singular` with ``n`` a multiple of 4 (12 by default)."""
    return powell_singular(n)


def wood() -> Problem:
    """MGH 14, Wood: r = (10 (x2 - x1^2), 1 - x1, sqrt(90) (x4 - x3^2), 1 - x3,
    sqrt(10) (x2 + x4 - 2), (x2 - x4)/sqrt(10)). x0 = (-3, -1, -3, -1); f* = 0 at 1."""
    r90, r10 = math.sqrt(90.0), math.sqrt(10.0)

    def residuals(x: Vector, ops: _ArrayOps) -> Vector:
        x1, x2, x3, x4 = x[0], x[1], x[2], x[3]
        return ops.stack([(x2 - x1 * x1) * 10.0, 1.0 - x1, (x4 - x3 * x3) * r90, 1.0 - x3,
                          (x2 + x4 - 2.0) * r10, (x2 - x4) * (1.0 / r10)])

    return _mgh("wood", 14, residuals, np.array([-3.0, -1.0, -3.0, -1.0]), 0.0, np.ones(4),
                "Wood")


def penalty1(n: int = 10) -> Problem:
    """MGH 23, penalty function I: r_i = sqrt(a) (x_i - 1), i = 1..n, and
    r_{n+1} = sum_j x_j^2 - 1/4, with a = 1e-5. x0 = (1, 2, ..., n).

    The optimum, computed here: at a stationary point 2a (x_i - 1) + 4 x_i (S - 1/4) = 0
    with S = sum_j x_j^2, so all x_i are equal to some t; t is a root of the cubic
    4n t^3 + (2a - 1) t - 2a = 0 (the derivative of a n (t-1)^2 + (n t^2 - 1/4)^2), the
    lowest of whose real roots is polished by Newton's method. f* = 7.08765e-5 for n = 10
    and 2.24997e-5 for n = 4 (the paper's values)."""
    n = _size("n", n, 1)
    a = 1e-5
    ra = math.sqrt(a)

    def phi(t: float) -> float:
        return a * n * (t - 1.0) ** 2 + (n * t * t - 0.25) ** 2

    roots = [float(r.real) for r in np.roots([4.0 * n, 0.0, 2 * a - 1.0, -2 * a])
             if abs(r.imag) < 1e-12]
    t = min(roots, key=phi)
    for _ in range(5):  # Newton on the cubic: the roots come back to a few ulps
        t -= (4 * n * t**3 + (2 * a - 1) * t - 2 * a) / (12 * n * t * t + 2 * a - 1)

    def residuals(x: Vector, ops: _ArrayOps) -> Vector:
        return ops.concatenate([(x - 1.0) * ra, ((x * x).sum() - 0.25).reshape(1)])

    return _mgh("penalty1", 23, residuals, np.arange(1.0, n + 1), phi(t), np.full(n, t),
                "penalty function I")


def variably_dimensioned(n: int = 10) -> Problem:
    """MGH 25, variably dimensioned: r_i = x_i - 1, i = 1..n, r_{n+1} = sum_j j (x_j - 1),
    r_{n+2} = r_{n+1}^2. x0_j = 1 - j/n; f* = 0 at 1."""
    n = _size("n", n, 1)
    j = np.arange(1.0, n + 1)

    def residuals(x: Vector, ops: _ArrayOps) -> Vector:
        u = ((x - 1.0) * j).sum().reshape(1)
        return ops.concatenate([x - 1.0, u, u * u])

    return _mgh("vardim", 25, residuals, 1.0 - j / n, 0.0, np.ones(n), "variably dimensioned")


def _shifted(x: Vector, ops: _ArrayOps) -> tuple[Vector, Vector]:
    """(x_{i-1}, x_{i+1}) for i = 1..n with x_0 = x_{n+1} = 0."""
    zero = np.zeros(1)
    return ops.concatenate([zero, x[:-1]]), ops.concatenate([x[1:], zero])


def broyden_tridiagonal(n: int = 10) -> Problem:
    """MGH 30, Broyden tridiagonal: r_i = (3 - 2 x_i) x_i - x_{i-1} - 2 x_{i+1} + 1 with
    x_0 = x_{n+1} = 0. x0 = (-1, ..., -1); f* = 0 (x* solved for with SciPy)."""
    n = _size("n", n, 2)

    def residuals(x: Vector, ops: _ArrayOps) -> Vector:
        before, after = _shifted(x, ops)
        return (3.0 - x * 2.0) * x - before - after * 2.0 + 1.0

    x0 = -np.ones(n)
    return _mgh("broyden-tri", 30, residuals, x0, 0.0,
                _solve_residuals(residuals, x0, "broyden_tridiagonal"), "Broyden tridiagonal")


def broyden_banded(n: int = 10) -> Problem:
    """MGH 31, Broyden banded: r_i = x_i (2 + 5 x_i^2) + 1 - sum_{j in J_i} x_j (1 + x_j),
    J_i = {j != i : max(1, i - 5) <= j <= min(n, i + 1)}. x0 = (-1, ..., -1); f* = 0
    (x* solved for with SciPy)."""
    n = _size("n", n, 2)
    band = np.zeros((n, n))
    for i in range(n):
        band[i, max(0, i - 5):min(n, i + 2)] = 1.0
        band[i, i] = 0.0

    def residuals(x: Vector, ops: _ArrayOps) -> Vector:
        return x * (2.0 + x * x * 5.0) + 1.0 - band @ (x * (1.0 + x))

    x0 = -np.ones(n)
    return _mgh("broyden-banded", 31, residuals, x0, 0.0,
                _solve_residuals(residuals, x0, "broyden_banded"), "Broyden banded")


def box3d(m: int = 10) -> Problem:
    """MGH 12, Box three-dimensional: r_i = exp(-t_i x1) - exp(-t_i x2)
    - x3 (exp(-t_i) - exp(-10 t_i)), t_i = 0.1 i, i = 1..m. x0 = (0, 10, 20); f* = 0 at
    (1, 10, 1) (and on other points: (10, 1, -1), and x1 = x2 with x3 = 0)."""
    m = _size("m", m, 3)
    t = 0.1 * np.arange(1.0, m + 1)
    c = np.exp(-t) - np.exp(-10.0 * t)

    def residuals(x: Vector, ops: _ArrayOps) -> Vector:
        return ops.exp(-(t * x[0])) - ops.exp(-(t * x[1])) - c * x[2]

    return _mgh("box3d", 12, residuals, np.array([0.0, 10.0, 20.0]), 0.0,
                np.array([1.0, 10.0, 1.0]), "Box three-dimensional")


def brown_badly_scaled() -> Problem:
    """MGH 4, Brown badly scaled: r = (x1 - 1e6, x2 - 2e-6, x1 x2 - 2). x0 = (1, 1);
    f* = 0 at (1e6, 2e-6)."""

    def residuals(x: Vector, ops: _ArrayOps) -> Vector:
        x1, x2 = x[0], x[1]
        return ops.stack([x1 - 1e6, x2 - 2e-6, x1 * x2 - 2.0])

    return _mgh("brown-badly-scaled", 4, residuals, np.array([1.0, 1.0]), 0.0,
                np.array([1e6, 2e-6]), "Brown badly scaled")


def discrete_boundary_value(n: int = 10) -> Problem:
    """MGH 28, discrete boundary value: r_i = 2 x_i - x_{i-1} - x_{i+1}
    + h^2 (x_i + t_i + 1)^3 / 2, h = 1/(n+1), t_i = i h, x_0 = x_{n+1} = 0.
    x0_j = t_j (t_j - 1); f* = 0 (x* solved for with SciPy)."""
    n = _size("n", n, 2)
    h = 1.0 / (n + 1)
    t = h * np.arange(1.0, n + 1)

    def residuals(x: Vector, ops: _ArrayOps) -> Vector:
        before, after = _shifted(x, ops)
        return x * 2.0 - before - after + (x + t + 1.0) ** 3 * (h * h / 2)

    x0 = t * (t - 1.0)
    return _mgh("boundary-value", 28, residuals, x0, 0.0,
                _solve_residuals(residuals, x0, "discrete_boundary_value"),
                "discrete boundary value")


def discrete_integral_equation(n: int = 10) -> Problem:
    """MGH 29, discrete integral equation: r_i = x_i + h [(1 - t_i) sum_{j<=i} t_j u_j
    + t_i sum_{j>i} (1 - t_j) u_j] / 2 with u_j = (x_j + t_j + 1)^3, h = 1/(n+1),
    t_i = i h. x0_j = t_j (t_j - 1); f* = 0 (x* solved for with SciPy)."""
    n = _size("n", n, 2)
    h = 1.0 / (n + 1)
    t = h * np.arange(1.0, n + 1)
    lower = np.tril(np.ones((n, n)))
    upper = np.triu(np.ones((n, n)), 1)
    # r = x + (h/2) [(1 - t) * (L (t u)) + t * (U ((1 - t) u))], as two constant matrices
    left = (h / 2) * (1.0 - t)[:, None] * lower * t[None, :]
    right = (h / 2) * t[:, None] * upper * (1.0 - t)[None, :]
    K = left + right

    def residuals(x: Vector, ops: _ArrayOps) -> Vector:
        return x + K @ (x + t + 1.0) ** 3

    x0 = t * (t - 1.0)
    return _mgh("integral-eq", 29, residuals, x0, 0.0,
                _solve_residuals(residuals, x0, "discrete_integral_equation"),
                "discrete integral equation")


def linear_full_rank(n: int = 10, m: int = 20) -> Problem:
    """MGH 32, linear function of full rank: r_i = x_i - (2/m) sum_j x_j - 1 for i <= n,
    r_i = -(2/m) sum_j x_j - 1 for n < i <= m (m >= n). A convex quadratic; x0 = 1;
    f* = m - n at x = -1; L = 2 lambda_max(A'A) with r = A x - 1."""
    n = _size("n", n, 1)
    m = _size("m", m, n)
    A = np.vstack([np.eye(n), np.zeros((m - n, n))]) - 2.0 / m

    def residuals(x: Vector, ops: _ArrayOps) -> Vector:
        return A @ x - 1.0

    return _mgh("linear-full-rank", 32, residuals, np.ones(n), float(m - n), -np.ones(n),
                f"linear function, full rank (m={m})", convex=True,
                lipschitz=2 * _lambda_max(A.T @ A))


#: The Moré-Garbow-Hillstrom problems by registry name (with ``rosenbrock``, MGH 1).
MGH_PROBLEMS: dict[str, Callable[..., Problem]] = {
    "rosenbrock": rosenbrock,
    "ext-rosenbrock": extended_rosenbrock,
    "beale": beale,
    "powell-singular": powell_singular,
    "ext-powell": extended_powell,
    "wood": wood,
    "penalty1": penalty1,
    "vardim": variably_dimensioned,
    "broyden-tri": broyden_tridiagonal,
    "broyden-banded": broyden_banded,
    "box3d": box3d,
    "brown-badly-scaled": brown_badly_scaled,
    "boundary-value": discrete_boundary_value,
    "integral-eq": discrete_integral_equation,
    "linear-full-rank": linear_full_rank,
}


# ------------------------------------------------------------------------------ registry
PROBLEMS: dict[str, Callable[..., Problem]] = {
    "leastsq": least_squares,
    "ridge": ridge,
    "quad2d": quadratic_2d,
    "logreg": logistic_regression,
    "lasso": lasso,
    "svm": svm,
    "maxaffine": max_affine,
    "rosenbrock": rosenbrock,
    "saddle": saddle,
    "mlp": mlp_digits,
    **{name: builder for name, builder in MGH_PROBLEMS.items() if name != "rosenbrock"},
}


def make_problem(name: str, seed: int | None = None) -> Problem:
    """Build ``PROBLEMS[name]`` (with ``seed`` where the builder takes one)."""
    if not isinstance(name, str):
        raise TypeError(f"make_problem: name must be a str, one of {', '.join(PROBLEMS)}; "
                        f"got {name!r}")
    key = name.strip().lower()
    if key not in PROBLEMS:
        raise ConfigError(f"unknown problem {name!r}; known: {', '.join(PROBLEMS)}")
    builder = PROBLEMS[key]
    if seed is not None:
        seed = check_seed(seed)
    if seed is not None and "seed" in inspect.signature(builder).parameters:
        return builder(seed=seed)
    return builder()
