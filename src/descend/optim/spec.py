"""The one registry: step rules and optimizers by name, for every door.

``descend train --lr``, ``descend compare --steps``, the estimators' ``lr=`` strings and
:func:`descend.torch.make_optimizer` all turn names into objects here, so a rule added to
:data:`RULES` (one class plus one registry line) is at once in ``--help``, ``compare``, the
estimators and both engines.

Spec strings
------------
::

    SPEC  :=  NUMBER  |  NAME  |  NAME ":" ARG (":" ARG)*
    ARG   :=  NUMBER  |  KEY "=" NUMBER

A bare number is a constant step (``0.1``). Numbers after the name fill the rule's
parameters in order (``wolfe:0.0001:0.1``: c1, c2); ``KEY=NUMBER`` names one
(``armijo:c1=0.1``, ``cosine:0.1:5000:min_lr=1e-4``); numbers by position come first. Case
and blanks around the spec are ignored, and so are empty pieces between colons. Parameters
marked as counts (``step:0.1:1000:0.5``'s 1000) take whole numbers.

Given an objective (:class:`Objective`: ``descend compare``'s problem), a number may be
written ``k/L``: k over the objective's gradient Lipschitz constant (``constant:1/L``), and a
parameter the registry marks as the objective's (``polyak``'s f*) takes the objective's
value when the spec does not give it.

Optimizers
----------
:data:`OPTIMIZERS` names the optimizers (``gd``, ``adam``, ``subgradient``, ``lbfgs``,
``cg``, ``momo``, ``momo-adam`` and the Schedule-Free ``sf-sgd``, ``sf-adamw``,
``sf-plus``), the options each takes and the step rule it gets when none is given;
:func:`make_optimizer` builds one from the NumPy classes (:mod:`descend.optim`) or from
another namespace holding classes of the same names (:mod:`descend.torch`).
``recommended`` names descend's best untuned optimizer, built by :func:`recommended`: its
entry is the one place that choice is made.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType, SimpleNamespace
from typing import Any, NamedTuple, Protocol

from ..errors import ConfigError, ConfigTypeError
from . import rules
from .averaging import AdamWScheduleFree, ScheduleFree, ScheduleFreePlus, SGDScheduleFree
from .momo import Momo, MomoAdam
from .optimizer import GD, Adam
from .quasi_newton import CG, LBFGS
from .rules.polyak import MomoStep
from .subgradient import Subgradient

__all__ = [
    "NUMPY",
    "OPTIMIZERS",
    "RULES",
    "Default",
    "Objective",
    "OptimizerEntry",
    "Param",
    "ParsedSpec",
    "RuleEntry",
    "RuleRegistry",
    "make_optimizer",
    "optimizer_entry",
    "parse_step_rule",
    "recommended",
    "register_rule",
    "resolve_rule",
    "unregister_rule",
]


class Default(Enum):
    """Defaults that are not values: what a parameter not given in a spec becomes."""

    #: the spec must give it
    REQUIRED = "required"
    #: not passed on: the rule's own default applies
    RULE = "rule"


class Objective(Protocol):
    """What a caller may know about the objective (``descend compare``'s ``Problem``)."""

    name: str
    #: the gradient's Lipschitz constant L, for ``k/L`` numbers (None: unknown)
    lipschitz: float | None
    #: the optimal value f*, for parameters marked ``from_objective="f_star"``
    f_star: float | None


@dataclass(frozen=True)
class Param:
    """One parameter of a registered rule: a keyword of the rule's constructor.

    Attributes
    ----------
    name : str
        The constructor's keyword, also the spec's ``KEY=``.
    default : Any
        The value when the spec does not give it: a number, ``Default.RULE`` (the rule's
        own default) or ``Default.REQUIRED``.
    count : bool
        A whole number (the spec's ``2.5`` is refused, ``3`` becomes the int 3).
    keyword_only : bool
        Given only as ``KEY=NUMBER``, never by position.
    from_objective : str or None
        The objective's attribute that fills the parameter when an objective is given and
        the spec does not (None where the objective does not know it).
    unknown : str
        Said in the label when ``from_objective`` found None (``"f* estimated"``).
    """

    name: str
    default: Any = Default.RULE
    count: bool = False
    keyword_only: bool = False
    from_objective: str | None = None
    unknown: str = ""


@dataclass(frozen=True)
class RuleEntry:
    """A registered rule: its name, how to build it, its parameters and its help line.

    ``build`` is called with keyword arguments: ``fixed`` (what the name itself settles,
    e.g. ``sps`` is Polyak with c = 0.5) and the parameters the spec gave or that have a
    registry default. ``example`` is a spec that builds a working rule (tests run it
    through every door); it defaults to the bare name.
    """

    name: str
    build: Callable[..., Any]
    params: tuple[Param, ...]
    help: str
    fixed: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    example: str = ""

    @property
    def positional(self) -> tuple[Param, ...]:
        """The parameters a spec may give by position, in order."""
        return tuple(p for p in self.params if not p.keyword_only)

    @property
    def usage(self) -> str:
        """``invtime:a[:b]``: the name, required numbers, optional ones in brackets."""
        required = [p.name for p in self.positional if p.default is Default.REQUIRED]
        optional = [p.name for p in self.positional if p.default is not Default.REQUIRED]
        text = ":".join([self.name, *required]) + "".join(f"[:{n}" for n in optional)
        text += "]" * len(optional)
        keywords = [p.name for p in self.params if p.keyword_only]
        return text + (f" [{' '.join(f'{k}=' for k in keywords)}]" if keywords else "")


class ParsedSpec(NamedTuple):
    """A spec's rule and its label: the spec as written, with what the objective settled
    (``constant:1/L (=0.25)``, ``polyak (f* estimated)``)."""

    rule: Any
    label: str


class _Arg(NamedTuple):
    key: str | None  # None: by position
    value: float
    shown: str  # as the label shows it
    resolved: bool  # written k/L and resolved against the objective


class RuleRegistry:
    """Names -> rule entries; parses specs into rules and lists them for ``--help``.

    Entries are kept in registration order (the order ``--help`` lists them). Register
    with :meth:`add` (a table line) or :meth:`rule` (a class decorator); :meth:`remove`
    takes one out again (tests that register their own rules).
    """

    def __init__(self) -> None:
        self._entries: dict[str, RuleEntry] = {}

    def add(self, name: str, build: Callable[..., Any], *params: Param | str, help: str,
            fixed: Mapping[str, Any] | None = None, example: str = "") -> RuleEntry:
        """Register ``build`` under ``name``; a ``str`` param is a required number."""
        key = name.strip().lower()
        if not key or ":" in key or "=" in key or key in self._entries:
            raise ConfigError(f"cannot register a step rule named {name!r}: "
                              + ("the name is taken" if key in self._entries
                                 else "names are non-empty and hold no ':' or '='"))
        entry = RuleEntry(key, build,
                          tuple(Param(p, Default.REQUIRED) if isinstance(p, str) else p
                                for p in params),
                          help, MappingProxyType(dict(fixed or {})), example or key)
        self._entries[key] = entry
        return entry

    def rule(self, name: str, *params: Param | str, help: str,
             fixed: Mapping[str, Any] | None = None,
             example: str = "") -> Callable[[type], type]:
        """The class decorator form of :meth:`add`."""
        def register(cls: type) -> type:
            self.add(name, cls, *params, help=help, fixed=fixed, example=example)
            return cls

        return register

    def remove(self, name: str) -> RuleEntry:
        """Take the entry ``name`` out of the registry; returns it."""
        return self._entries.pop(self[name].name)

    def __getitem__(self, name: str) -> RuleEntry:
        if not isinstance(name, str):
            raise ConfigTypeError(f"a step rule's name must be a string, got {name!r:.60}")
        key = name.strip().lower()
        if key not in self._entries:
            raise ConfigError(f"unknown step rule {key!r}; known: {', '.join(sorted(self))}")
        return self._entries[key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.strip().lower() in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def entries(self) -> list[RuleEntry]:
        """The entries in registration order."""
        return list(self._entries.values())

    def help_lines(self, indent: str = "  ", column: int = 32) -> list[str]:
        """``--help``'s list: per rule its usage and its help, the help from ``column`` on
        (on a line of its own after a longer usage)."""
        lines = []
        for e in self.entries():
            if len(indent + e.usage) < column - 1:
                lines.append(f"{indent + e.usage:<{column}}{e.help}")
            else:
                lines += [indent + e.usage, " " * column + e.help]
        return lines

    def parse(self, spec: str, objective: Objective | None = None) -> ParsedSpec:
        """The rule a spec string names, and its label (see the module docstring)."""
        if not isinstance(spec, str):
            raise TypeError(f"spec must be a step rule string, got {spec!r}")
        text = spec.strip()
        if not text:
            raise ConfigError(
                f"empty step rule {spec!r}: give a number (0.1) or a rule name (armijo, ...)")
        name, *pieces = text.split(":")
        name = name.strip().lower()
        args = [_parse_arg(p, spec, objective) for p in pieces if p.strip()]
        if not args:
            try:
                value = float(name)
            except ValueError:
                pass
            else:
                return ParsedSpec(_built(spec, rules.Constant, {"lr": value}), text)
        if name not in self._entries:
            raise ConfigError(f"unknown step rule {name!r} in {spec!r}; "
                              f"known: {', '.join(sorted(self))}")
        entry = self._entries[name]
        kwargs, notes = _bind(entry, args, spec, objective)
        if any(a.resolved for a in args):
            notes.insert(0, "=" + ":".join(a.shown for a in args))
        label = text + "".join(f" ({note})" for note in notes)
        return ParsedSpec(_built(spec, entry.build, {**entry.fixed, **kwargs}), label)


def _built(spec: str, build: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """The rule, or the rule's own refusal of a value with the spec named in front."""
    try:
        return build(**kwargs)
    except (ConfigError, ConfigTypeError) as exc:
        raise type(exc)(f"step rule {spec!r}: {exc}") from None


def _parse_arg(piece: str, spec: str, objective: Objective | None) -> _Arg:
    """One piece after a ':' of a spec: a number, or KEY=NUMBER."""
    key: str | None = None
    text = piece.strip()
    if "=" in text:
        left, _, text = text.partition("=")
        key = left.strip().lower()
        text = text.strip()
    value, resolved = _number(text, spec, objective)
    shown = f"{value:.4g}" if resolved else _short(text)
    return _Arg(key, value, shown if key is None else f"{key}={shown}", resolved)


def _number(text: str, spec: str, objective: Objective | None) -> tuple[float, bool]:
    """A spec's number, and whether it was written ``k/L`` (resolved by the objective)."""
    lowered = text.lower()
    if objective is not None and lowered.endswith("/l"):
        try:
            k = float(lowered[:-2] or "1")
        except ValueError:
            raise ConfigError(f"step rule {spec.strip()!r}: cannot read {text!r} "
                              "(expected k/L)") from None
        if objective.lipschitz is None:
            raise ConfigError(
                f"step rule {spec.strip()!r}: problem {objective.name!r} has no known "
                "gradient Lipschitz constant L; give the step as a number")
        return k / objective.lipschitz, True
    try:
        return float(text), False
    except ValueError:
        raise ConfigError(f"step rule {spec!r}: the arguments after ':' must be "
                          "numbers") from None


def _short(text: str) -> str:
    try:
        return f"{float(text):.4g}"
    except ValueError:
        return text


def _bind(entry: RuleEntry, args: list[_Arg], spec: str,
          objective: Objective | None) -> tuple[dict[str, Any], list[str]]:
    """The constructor's keyword arguments from a spec's numbers (checked against the
    entry's parameters), and the notes the label gets."""
    positional = [a for a in args if a.key is None]
    slots = entry.positional
    fewest = sum(p.default is Default.REQUIRED for p in slots)
    if args and any(a.key is None for a in args[len(positional):]):
        raise ConfigError(f"step rule {spec!r}: numbers by position come before KEY=NUMBER "
                          "ones")
    if len(positional) > len(slots) or (len(args) == len(positional) < fewest):
        raise ConfigError(f"step rule {spec!r}: {entry.name} takes {fewest} to {len(slots)} "
                          f"numbers after ':', got {len(positional)}")
    given = {p.name: a.value for p, a in zip(slots, positional)}
    by_name = {p.name: p for p in entry.params}
    for a in args[len(positional):]:
        assert a.key is not None
        if a.key not in by_name:
            takes = ", ".join(by_name) or "no parameters"
            raise ConfigError(f"step rule {spec!r}: {entry.name} has no parameter "
                              f"{a.key!r} (it takes {takes})")
        if a.key in given:
            raise ConfigError(f"step rule {spec!r}: {a.key} is given twice")
        given[a.key] = a.value
    kwargs: dict[str, Any] = {}
    notes: list[str] = []
    for p in entry.params:
        if p.name in given:
            kwargs[p.name] = _whole(given[p.name], spec) if p.count else given[p.name]
        elif objective is not None and p.from_objective is not None:
            kwargs[p.name] = getattr(objective, p.from_objective)
            if kwargs[p.name] is None and p.unknown:
                notes.append(p.unknown)
        elif p.default is Default.REQUIRED:
            raise ConfigError(f"step rule {spec!r}: {entry.name} needs {p.name} "
                              f"({entry.usage})")
        elif p.default is not Default.RULE:
            kwargs[p.name] = p.default
    return kwargs, notes


def _whole(value: float, spec: str) -> int:
    if not float(value).is_integer():
        raise ConfigError(f"step rule {spec!r}: {value:g} must be a whole number")
    return int(value)


#: THE registry of step rules: every door parses specs through it.
RULES = RuleRegistry()
RULES.add("constant", rules.Constant, "lr", help="alpha = lr (also a bare number: 0.1)",
          example="constant:0.1")
RULES.add("invtime", rules.InverseTime, "a", Param("b"), example="invtime:0.5:10",
          help="a / (b + t): square summable, not summable")
RULES.add("invsqrt", rules.InverseSqrt, "a", Param("b"), example="invsqrt:0.5",
          help="a / sqrt(b + t): nonsummable diminishing")
RULES.add("exp", rules.ExponentialDecay, "lr", Param("gamma"), example="exp:0.1:0.99",
          help="lr * gamma^t (summable)")
RULES.add("step", rules.StepDecay, "lr", Param("step_size", Default.REQUIRED, count=True),
          Param("gamma"), example="step:0.1:1000:0.5",
          help="lr * gamma^floor(t / step_size) (summable)")
RULES.add("cosine", rules.Cosine, "lr", Param("total_steps", Default.REQUIRED, count=True),
          Param("warmup", count=True), Param("min_lr"), example="cosine:0.1:5000",
          help="linear warm-up, then cosine decay to min_lr over total_steps")
RULES.add("armijo", rules.Armijo, Param("c1"), Param("shrink"), Param("alpha0"),
          Param("grow", keyword_only=True), Param("max_lr", keyword_only=True),
          help="backtracking line search to the Armijo condition (forward only)")
RULES.add("sls", rules.Armijo, Param("c1", 0.1), Param("shrink"), Param("alpha0"),
          Param("grow", keyword_only=True), Param("max_lr", keyword_only=True),
          help="stochastic line search: Armijo with c1 = 0.1, growing 2x per epoch")
RULES.add("salsa", rules.SmoothedArmijo, Param("c1"), Param("shrink"), Param("grow"),
          Param("every", count=True), Param("beta", keyword_only=True),
          Param("alpha0", keyword_only=True), Param("warmup", keyword_only=True, count=True),
          help="SaLSA: Armijo on averages, checked every <= 10 steps (for Adam)")
RULES.add("wolfe", rules.StrongWolfe, Param("c1"), Param("c2"), Param("alpha0", keyword_only=True),
          help="strong-Wolfe line search (forward and backward per trial)")
RULES.add("exact", rules.Exact, Param("tol", keyword_only=True),
          help="exact line search (bracketing and Brent's method)")
RULES.add("exact-quadratic", rules.Exact, fixed={"quadratic": True},
          help="exact step for a quadratic: one trial gives the curvature")
RULES.add("polyak", rules.Polyak,
          Param("f_star", from_objective="f_star", unknown="f* estimated"), Param("c"),
          Param("max_lr"), Param("gamma", keyword_only=True),
          help="Polyak step (f - f*) / (c ||g||^2) along -g, f* = 0 by default")
RULES.add("polyak-est", rules.Polyak, Param("gamma"), fixed={"f_star": None},
          help="Polyak step aiming at f_best - gamma / sqrt(t + 1) (f* unknown)")
RULES.add("sps", rules.Polyak, Param("max_lr", 1.0), fixed={"f_star": 0.0, "c": 0.5},
          help="stochastic Polyak step SPS_max: c = 0.5, f* = 0, capped at max_lr")
RULES.add("momo", MomoStep, Param("lr"), Param("lb"),
          help="MoMo: the averaged model's Polyak step, capped at lr (lb = 0)")
RULES.add("momo-est", MomoStep, Param("lr"), Param("lb"), fixed={"estimate_lb": True},
          help="MoMo*: MoMo with the loss's lower bound estimated online")
RULES.add("length", rules.ConstantLength, "gamma", example="length:0.01",
          help="gamma / ||d||: every step moves the parameters by gamma")
RULES.add("plateau", rules.ReduceOnPlateau, "lr", Param("factor"), Param("patience", count=True),
          Param("threshold"), Param("min_lr", keyword_only=True), example="plateau:0.1",
          help="lr times factor after patience epochs without a lower loss")
RULES.add("dog", rules.DoG, Param("lr"), Param("reps_rel"), Param("init_eta", keyword_only=True),
          help="DoG: max distance from x0 over root-sum-square of gradients")
RULES.add("ldog", rules.LDoG, Param("lr"), Param("reps_rel"),
          Param("init_eta", keyword_only=True),
          help="layer-wise DoG: a DoG step size per parameter tensor")
RULES.add("prodigy", rules.Prodigy, Param("lr"), Param("d_coef"), Param("d0", keyword_only=True),
          Param("growth_rate", keyword_only=True), Param("beta3", keyword_only=True),
          help="Prodigy: Adam's moments, step d lr, d estimating ||x0 - x*||")
RULES.add("dadapt-adam", rules.DAdaptAdam, Param("lr"), Param("d0", keyword_only=True),
          Param("growth_rate", keyword_only=True),
          help="D-Adaptation over Adam's moments (the authors' DAdaptAdam)")
RULES.add("dadapt-sgd", rules.DAdaptSGD, Param("lr"), Param("d0", keyword_only=True),
          Param("growth_rate", keyword_only=True),
          help="D-Adaptation along -g: step d lr / ||g_0||")

#: Register a rule class: ``@register_rule("name", "a", Param("b"), help="...")``.
register_rule = RULES.rule


def unregister_rule(name: str) -> RuleEntry:
    """Take a registered rule out again (see :meth:`RuleRegistry.remove`)."""
    return RULES.remove(name)


def parse_step_rule(spec: str, objective: Objective | None = None) -> Any:
    """Build a rule from a spec string (command line and config files only).

    ``0.1``, ``constant:0.1``, ``invtime:a[:b]``, ``invsqrt:a[:b]``, ``exp:lr:gamma``,
    ``step:lr:every:gamma``, ``cosine:lr:total[:warmup[:min_lr]]``, ``armijo[:c1[:shrink]]``,
    ``sls`` (Armijo with c1 = 0.1, shrink = 0.5), ``wolfe[:c1[:c2]]``, ``exact``,
    ``exact-quadratic``, ``polyak[:f_star]``, ``polyak-est[:gamma]``, ``sps[:max_lr]``,
    ``length:gamma``, ``plateau:lr[:factor[:patience[:threshold]]]``, ``dog[:lr[:reps_rel]]``,
    ``ldog[:lr[:reps_rel]]``, ``prodigy[:lr[:d_coef]]``, ``dadapt-adam[:lr]``,
    ``dadapt-sgd[:lr]``, any of them with
    ``KEY=NUMBER`` arguments (``armijo:c1=0.1``), and any rule registered since
    (:data:`RULES`). Bad specs raise ``ConfigError`` naming the spec and what is wrong.
    """
    return RULES.parse(spec, objective).rule


def resolve_rule(lr: Any, objective: Objective | None = None) -> ParsedSpec:
    """A fresh rule from a spec string, a number, a schedule ``t -> lr`` or a rule object,
    and its label. Objects are deep-copied, so a rule's state (a warm-started search,
    Polyak's f_best) starts fresh and the caller's object is left alone."""
    if isinstance(lr, str):
        return RULES.parse(lr, objective)
    rule = copy.deepcopy(rules.as_step_rule(lr))
    return ParsedSpec(rule, repr(rule))


# ------------------------------------------------------------------------------ optimizers
@dataclass(frozen=True)
class OptimizerEntry:
    """A registered optimizer: the class it names (looked up in a namespace, so the NumPy
    and torch engines share the entry), the options it takes besides ``lr``,
    ``weight_decay`` and ``max_grad_norm`` (which every optimizer takes), the step rule it
    gets when none is given, and its help line."""

    name: str
    cls: str
    options: tuple[str, ...]
    default_lr: str
    help: str


#: THE registry of optimizers, in the order ``--help`` lists them.
OPTIMIZERS: Mapping[str, OptimizerEntry] = MappingProxyType({e.name: e for e in (
    OptimizerEntry("gd", "GD", ("momentum", "nesterov", "lean"), "sls",
                   "gradient descent, with heavy-ball or Nesterov momentum"),
    OptimizerEntry("adam", "Adam", ("betas", "eps", "lean"), "0.001", "Adam's scaled direction"),
    OptimizerEntry("subgradient", "Subgradient", (), "invsqrt:0.1",
                   "the subgradient method (keeps the best iterate)"),
    OptimizerEntry("lbfgs", "LBFGS", ("history_size", "max_iter"), "wolfe",
                   "L-BFGS, for full batches"),
    OptimizerEntry("cg", "CG", ("beta", "restart", "max_iter"), "wolfe:0.0001:0.1",
                   "nonlinear conjugate gradients, for full batches"),
    OptimizerEntry("momo", "Momo", (), "momo",
                   "MoMo: averaged momentum, the Polyak step of its model"),
    OptimizerEntry("momo-adam", "MomoAdam", ("betas", "eps"), "momo:0.01",
                   "MoMo-Adam: Adam's direction, MoMo's model step"),
    OptimizerEntry("sf-sgd", "SGDScheduleFree", ("warmup_steps",), "1.0",
                   "Schedule-Free SGD (gradients at y, evaluation at the average x)"),
    OptimizerEntry("sf-adamw", "AdamWScheduleFree", ("betas", "eps", "warmup_steps"), "0.0025",
                   "Schedule-Free AdamW"),
    OptimizerEntry("sf-plus", "ScheduleFreePlus", ("betas", "eps"), "1.0",
                   "ScheduleFree+: Schedule-Free Adam with a Polyak step"),
    # descend's best untuned optimizer, what recommended() builds: the one line to change
    OptimizerEntry("recommended", "Momo", (), "momo",
                   "the best untuned choice for networks on mini-batches: now MoMo"),
)})
_EVERY = ("weight_decay", "max_grad_norm")
_OPTIONS = frozenset(_EVERY).union(*(e.options for e in OPTIMIZERS.values()))

#: The NumPy engine's classes, the namespace :func:`make_optimizer` uses by default.
NUMPY = SimpleNamespace(GD=GD, Adam=Adam, Subgradient=Subgradient, LBFGS=LBFGS, CG=CG,
                        Momo=Momo, MomoAdam=MomoAdam, SGDScheduleFree=SGDScheduleFree,
                        AdamWScheduleFree=AdamWScheduleFree, ScheduleFreePlus=ScheduleFreePlus)


def optimizer_entry(name: str) -> OptimizerEntry:
    """The registered optimizer ``name``; ``ConfigError`` listing the known ones."""
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def make_optimizer(name: str, params: Any, lr: Any = None, *, namespace: Any = None,
                   objective: Objective | None = None, strict: bool = True,
                   schedule_free: float | None = None, **options: Any) -> Any:
    """The optimizer ``name`` over ``params``, with step rule ``lr`` and ``options``.

    Parameters
    ----------
    name : str
        A key of :data:`OPTIMIZERS` (``"gd"``, ``"adam"``, ``"subgradient"``, ``"lbfgs"``,
        ``"cg"``, ``"momo"``, ``"momo-adam"``, ``"sf-sgd"``, ``"sf-adamw"``, ``"sf-plus"``).
    params : iterable
        The parameters (or parameter groups), as the class takes them.
    lr : str, float, callable, step rule or None
        A spec (parsed by :data:`RULES`, against ``objective`` when given), or anything the
        class takes as ``lr``; None is the optimizer's registered default rule.
    namespace : object, optional
        Where the classes are looked up by name (``GD``, ``Adam``, ...): the NumPy classes
        (:data:`NUMPY`) by default, ``descend.torch``'s for PyTorch parameters.
    strict : bool
        An option the optimizer does not take (``momentum`` for ``adam``) is refused with
        ``ConfigError`` unless it is unset (None, 0 or False); with ``strict=False`` it is
        dropped, as scikit-learn's MLPs ignore ``momentum`` under Adam.
    schedule_free : float or None
        Wrap the optimizer in Schedule-Free averaging with this beta
        (:class:`~descend.optim.averaging.ScheduleFree`: any optimizer, any rule).
    **options
        ``weight_decay`` and ``max_grad_norm`` for every optimizer; ``momentum``,
        ``nesterov``, ``betas``, ``eps``, ``history_size``, ``beta``, ``restart``,
        ``max_iter``, ``warmup_steps`` where they apply.
        None means "the class's default".
    """
    entry = optimizer_entry(name)
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise ConfigError(f"unknown optimizer option(s) {', '.join(unknown)}; options: "
                          f"{', '.join(sorted(_OPTIONS))}")
    kwargs = {}
    for key, value in options.items():
        if key in entry.options or key in _EVERY:
            if value is not None:
                kwargs[key] = value
        elif strict and not _unset(value):
            raise ConfigError(f"optimizer {name!r} takes no {key} (got {value!r}); its "
                              f"options: {', '.join((*entry.options, *_EVERY))}")
    if lr is None or isinstance(lr, str):
        lr = parse_step_rule(entry.default_lr if lr is None else lr, objective)
    space = NUMPY if namespace is None else namespace
    if not hasattr(space, entry.cls):
        raise ConfigTypeError(f"namespace must hold descend's optimizer classes (descend.optim "
                              f"or descend.torch), got {namespace!r:.60}")
    cls = getattr(space, entry.cls)
    optimizer = cls(params, lr=lr, **kwargs)
    if schedule_free is None:
        return optimizer
    if isinstance(optimizer, ScheduleFree):
        raise ConfigError(f"optimizer {name!r} is Schedule-Free already: no schedule_free")
    return ScheduleFree(optimizer, schedule_free)


def recommended(params: Any, *, namespace: Any = None, **overrides: Any) -> Any:
    """descend's best untuned optimizer over ``params``: the registry's ``"recommended"``
    entry (:data:`OPTIMIZERS`; now MoMo, ``Momo(params)``: averaged momentum whose step is
    the Polyak step of its model of the loss, lower bound 0, at most 1), chosen on
    measurements of networks trained on mini-batches (bench/lr_free.py,
    docs/learning-rate-free.md). One forward and one backward pass a step; the closure is
    called once.

    ``overrides`` are the entry's options (``lr``: a spec, number or rule in place of the
    recommended rule, e.g. ``"salsa"`` for the smoothed search; ``weight_decay`` and
    ``max_grad_norm``); an option the optimizer does not take is refused. ``namespace`` as
    in :func:`make_optimizer` (``descend.torch.recommended`` passes torch's classes).
    """
    lr = overrides.pop("lr", None)
    return make_optimizer("recommended", params, lr, namespace=namespace, **overrides)


def _unset(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and value == 0)
