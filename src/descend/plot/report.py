"""One HTML report of a run: the data, the model, one step walked through, the whole run,
why it stopped; each section tied to the idea it shows.

``fit(..., report=PATH)`` and ``descend explain`` write it. The first step is walked
through on the run's own first batch, then everything it touched is put back (parameters,
the optimizer's state, the random stream), so the run that follows is the one ``fit``
makes without a report, bit for bit; the report's step is that run's first step (a test
compares them). The file is self-contained: figures are inline SVG, no script, nothing
fetched from anywhere.
"""

from __future__ import annotations

import copy
import html
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from .._output import target_kind, write_output
from ..errors import ConfigError, ConfigTypeError, OutputError
from .graph import GraphRecord, collapse, figure, record_graph

__all__ = ["StepWalk", "check_report_target", "walk_first_step", "write_report"]


@dataclass
class StepWalk:
    """The first step of a run, taken on its first batch and then undone.

    ``info`` is the optimizer's :class:`~descend.optim.optimizer.StepInfo` of that step;
    ``parameters`` lists, per parameter, ``(name, shape, ||g||, ||x1 - x0||)``, the
    gradient at the start and the update; ``graph`` is the recorded forward and backward
    pass; ``line_svg`` the line search's picture (None when the rule searched no line).
    """

    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    classes: list[tuple[Any, int]] | None
    target: tuple[float, float] | None  # (mean, std) of a regression's batch targets
    graph: GraphRecord
    info: Any
    parameters: list[tuple[str, tuple[int, ...], float, float]]
    direction_norm: float
    line_svg: str | None = None
    line_note: str = ""
    modules: list[tuple[str, str, int]] = field(default_factory=list)


def check_report_target(path: Any) -> Path:
    """The report's path, refused early when it cannot be an HTML file there."""
    if not isinstance(path, str | Path):
        raise ConfigTypeError(f"report must be a path (str or Path), got {type(path).__name__}")
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"report {path}: the report is an HTML file; use a .html name")
    target_kind(path, what="report", error=OutputError)
    return path


def walk_first_step(model: Any, optimizer: Any, closure: Any) -> StepWalk:
    """Take the run's first step with its graph and line search recorded, then put back
    the parameters, the optimizer's state and the random stream as they were.

    ``closure`` is the first step's closure as ``fit`` makes it (``closure.x``, the batch's
    input tensor, and ``closure.y``, its targets).
    """
    X, y = np.asarray(closure.x.data), np.asarray(closure.y)
    saved_model = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
    saved_opt = copy.deepcopy(optimizer.state_dict())
    saved_lrs = [g["lr"] for g in optimizer.param_groups]
    saved_last = optimizer.last
    saved_rng = backend.rng_snapshot()
    saved_grads = [p.grad for p in optimizer.params]
    recording = optimizer.record_trials
    names = {id(p): n for n, p in model.named_parameters()}
    x0 = [np.array(p.data, copy=True) for p in optimizer.params]
    try:
        optimizer.record_trials = True
        with record_graph(model) as rec:
            optimizer.step(closure)
        info = optimizer.last
        grads = [np.zeros_like(p.data) if p.grad is None else np.array(p.grad)
                 for p in optimizer.params]
        moved = [p.data - a for p, a in zip(optimizer.params, x0)]
        step_len = math.sqrt(sum(float(np.sum(np.square(m, dtype=np.float64)))
                                 for m in moved))
        parameters = [(names.get(id(p), f"parameter {i}"), tuple(p.shape),
                       float(np.linalg.norm(g)), float(np.linalg.norm(m)))
                      for i, (p, g, m) in enumerate(zip(optimizer.params, grads, moved))]
        line_svg, note = _line_picture(optimizer)
        graph = rec.graph()
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_opt)
        for g, lr in zip(optimizer.param_groups, saved_lrs):
            g["lr"] = lr
        optimizer.last = saved_last
        optimizer.record_trials = recording
        backend.rng_restore(saved_rng)
        for p, g in zip(optimizer.params, saved_grads):
            p.grad = g
    classes = None
    target = None
    if y.dtype.kind in "iu":
        values, counts = np.unique(y, return_counts=True)
        classes = [(v.item(), int(c)) for v, c in zip(values, counts)]
    else:
        target = (float(np.mean(y)), float(np.std(y)))
    modules = [(name or "(model)", type(m).__name__,
                sum(p.size for p in m.parameters()))
               for name, m in model.named_modules()]
    return StepWalk(tuple(X.shape), tuple(y.shape), classes, target, graph, info, parameters,
                    step_len / info.lr if info.lr > 0 else math.nan, line_svg, note, modules)


def _line_picture(optimizer: Any) -> tuple[str | None, str]:
    """The line search's picture as SVG text, or why there is none."""
    from .search import line_search

    info = optimizer.last
    if info.trials is None or not info.updated:
        return None, "this step made no update, so there is no line to draw"
    fig = line_search(optimizer, points=60)
    return svg_text(fig), ""


def svg_text(fig: Any) -> str:
    """A figure as an inline ``<svg>`` element (no XML prolog, text kept as text, no
    date), for an HTML page."""
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "descend"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue().decode("utf-8")
    text = text[text.index("<svg"):]
    # inside HTML the SVG needs no namespace declarations, and its metadata (the writer's
    # name and licence as RDF) says nothing about the run: both would put URLs on the page
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    return re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)


# ------------------------------------------------------------------------------ the page
_STYLE = """
body { font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
.concept { background: #f5f8fc; border-left: 4px solid #6a8ec8; padding: 0.5em 1em; }
figure { margin: 1em 0; overflow-x: auto; } figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #555; }
"""

# what each section shows, in a few sentences
_CONCEPTS = {
    "data": "Training minimises the average loss over these samples. A step sees one "
            "batch: with mini-batches each step's loss and gradient are estimates of the "
            "full ones.",
    "model": "The model is a composition of modules; its parameters x are what the "
             "optimizer moves. The loss f(x) is a number computed from them.",
    "backprop": "Backpropagation: the forward pass records each operation; the backward "
                "pass walks the graph once in reverse, each operation's vector-Jacobian "
                "product turning d loss / d output into d loss / d inputs. The gradient g "
                "of the loss with respect to every parameter comes out of one pass, at "
                "about the cost of the forward pass.",
    "direction": "The direction d says where to move. Gradient descent takes d = -g; "
                 "other optimizers scale or remember (momentum, Adam, L-BFGS). It is a "
                 "descent direction when the slope g . d is negative: a small enough step "
                 "along it lowers the loss.",
    "search": "Step size and line search: the step rule chooses alpha, how far to go "
              "along d. A line search looks at phi(alpha) = f(x + alpha d) on the same "
              "batch and accepts a step that lowers the loss enough (Armijo's sufficient "
              "decrease: phi(alpha) <= phi(0) + c1 alpha phi'(0)), so no learning rate "
              "needs tuning.",
    "update": "The update moves the parameters to x + alpha d; its length is alpha ||d||.",
    "run": "Over many steps the loss should fall; the step sizes show what the rule "
           "chose, the evaluations per step what each step cost in forward passes, and the "
           "gradient norm how far from a stationary point the iterates are.",
    "stop": "Convergence criteria decide when to stop: a budget of epochs or steps, a "
            "small gradient norm (near a stationary point), a loss that stopped changing, "
            "a validation loss that stopped improving, or divergence. Each names the "
            "value that fired it.",
}


#: what each stop criterion (``StopReason.criterion``) means, for the last section
CRITERIA = {
    "epochs": "The budget of epochs ran out before any criterion held: the run may not have "
              "converged; more epochs, or a criterion, say more.",
    "max_epochs": "The epoch budget set as a criterion was reached.",
    "max_steps": "The budget of optimizer steps was reached.",
    "time_limit": "The time budget was spent.",
    "loss_below": "The epoch's mean training loss fell below the target: good enough by "
                  "the measure asked for.",
    "grad_norm_below": "The gradient norm fell below the threshold: the iterate is near a "
                       "stationary point, where gradient steps barely move.",
    "rel_loss_change_below": "The loss stopped changing (relative change below the "
                             "threshold): progress per epoch became negligible.",
    "param_change_below": "The parameters stopped moving: the steps of an epoch summed to "
                          "less than the threshold.",
    "patience": "The validation loss did not improve for the given number of epochs "
                "(early stopping): more training would fit the training data, not new data.",
    "stalled": "Every step of an epoch had size 0: no step could make progress at working "
               "precision.",
    "stationary": "The full-batch gradient was exactly zero: a stationary point.",
    "diverged": "The loss grew far above where it started or stopped being finite: the "
                "steps were too long. The last parameters with a good loss were put back.",
    "callback": "A callback asked to stop.",
    "interrupted": "The run was interrupted (Ctrl-C).",
}


#: the sections, in order: (id, title, the idea it shows)
_CONTENTS = (("data", "The data", "what a step sees"),
             ("model", "The model", "the parameters x"),
             ("backprop", "One step: backpropagation", "the gradient"),
             ("direction", "One step: the direction", "descent directions"),
             ("search", "One step: the step size", "line search"),
             ("update", "One step: the update", "x + alpha d"),
             ("run", "The whole run", "convergence"),
             ("stop", "Why it stopped", "convergence criteria"))


def number(x: Any) -> str:
    """How the report writes a number: 6 significant digits, so a reader (or a test) can
    compare it with the run's record."""
    if x is None:
        return "-"
    if isinstance(x, bool | np.bool_):
        return str(bool(x))
    if isinstance(x, int | np.integer):
        return str(int(x))
    return f"{float(x):.6g}"


def _table(head: list[str], rows: list[list[Any]], cls: str = "") -> str:
    out = [f'<table{f" class={chr(34)}{cls}{chr(34)}" if cls else ""}><tr>']
    out += [f"<th>{html.escape(h)}</th>" for h in head]
    out.append("</tr>")
    for row in rows:
        out.append("<tr>")
        for v in row:
            if isinstance(v, str):
                out.append(f'<td class="text">{html.escape(v)}</td>')
            else:
                out.append(f"<td>{html.escape(number(v))}</td>")
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _section(key: str, body: str) -> str:
    title = next(name for k, name, _ in _CONTENTS if k == key)
    return (f'<section id="{key}"><h2>{html.escape(title)}</h2>'
            f'<p class="concept">{html.escape(_CONCEPTS[key])}</p>{body}</section>')


def _figure(svg: str, caption: str, name: str) -> str:
    return (f'<figure id="figure-{name}">{svg}<figcaption>{html.escape(caption)}'
            "</figcaption></figure>")


def run_figure(history: Any) -> Any:
    """The whole run: loss, step size, evaluations per step, gradient norm, against steps."""
    from ._figure import new_figure

    fig = new_figure(figsize=(8.0, 6.0))
    axes = fig.subplots(2, 2, sharex=True)
    steps = np.arange(1, history.steps + 1)
    panels = [("loss", history.loss, "loss"), ("lr", history.lr, "step size alpha"),
              ("evaluations", history.evaluations, "forward passes per step"),
              ("grad_norm", history.grad_norm, "gradient norm ||g||")]
    for ax, (key, values, label) in zip(axes.flat, panels):
        v = np.asarray(values, dtype=float)
        ax.plot(steps, v, lw=0.9, gid=f"run-{key}", marker="." if len(v) < 60 else None)
        positive = v[np.isfinite(v) & (v > 0)]
        if key != "evaluations" and positive.size and positive.max() / positive.min() > 30:
            ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("step")
    fig.tight_layout()
    return fig


def _head_tail(n: int, head: int = 10, tail: int = 5) -> list[int]:
    if n <= head + tail:
        return list(range(n))
    return [*range(head), *range(n - tail, n)]


def report_html(walk: StepWalk, history: Any, *, title: str, optimizer: Any,
                data_name: str = "") -> str:
    """The report as one HTML5 page: the head and contents, then one section per idea."""
    info = walk.info
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(title)}</title>", f"<style>{_STYLE}</style>", "</head>",
             "<body>", f"<h1>{html.escape(title)}</h1>"]
    rule = optimizer.param_groups[0]["rule"]
    parts.append(f"<p>Optimizer <code>{html.escape(type(optimizer).__name__)}</code>, "
                 f"step rule <code>{html.escape(repr(rule))}</code>; "
                 f"{history.steps} steps, stopped: {html.escape(str(history.stop_reason))}."
                 "</p>")
    parts.append("<nav><ol>" + "".join(
        f'<li><a href="#{key}">{html.escape(name)}</a> ({html.escape(idea)})</li>'
        for key, name, idea in _CONTENTS) + "</ol></nav>")
    parts += [_section("data", _data_body(walk, data_name)),
              _section("model", _model_body(walk)),
              _section("backprop", _backprop_body(walk, info)),
              _section("direction", _direction_body(walk, info)),
              _section("search", _search_body(walk, info)),
              _section("update", _update_body(walk, info)),
              _section("run", _run_body(history)),
              _section("stop", _stop_body(history))]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _data_body(walk: StepWalk, data_name: str) -> str:
    """The data: the first batch's shapes, its classes or its targets' spread."""
    rows: list[list[Any]] = [["inputs of the first batch", str(walk.x_shape)],
                             ["targets of the first batch", str(walk.y_shape)]]
    body = ""
    if data_name:
        rows.insert(0, ["data", data_name])
    if walk.classes is not None:
        rows.append(["classes in the batch", str(len(walk.classes))])
        body = _table(["class", "samples in the first batch"],
                      [[str(c), n] for c, n in walk.classes])
    elif walk.target is not None:
        rows.append(["target mean", walk.target[0]])
        rows.append(["target std", walk.target[1]])
    return _table(["", ""], rows) + body


def _model_body(walk: StepWalk) -> str:
    """The model: its modules and parameters."""
    total = sum(int(np.prod(s)) for _, s, _, _ in walk.parameters)
    body = _table(["module", "class", "parameters"], [[n, c, k] for n, c, k in walk.modules])
    body += _table(["parameter", "shape", "entries"],
                   [[n, str(s), int(np.prod(s)) if s else 1] for n, s, _, _ in walk.parameters])
    return body + f"<p>{total} parameters in all.</p>"


def _backprop_body(walk: StepWalk, info: Any) -> str:
    """One step's forward values and backward graph."""
    small = collapse(walk.graph) if len(walk.graph.nodes) > 24 else walk.graph
    graph_svg = svg_text(figure(small, "step 0: forward values and backward gradients"))
    forward = [[n.name or n.op, n.op, str(n.shape), n.value.mean, n.value.min, n.value.max]
               for n in collapse(walk.graph).nodes if n.op not in ("constant", "parameter")]
    return ("<h3>Forward</h3>" + _table(["node", "operation", "shape", "mean", "min", "max"],
                                        forward)
            + f'<p>The loss at the start of the step: <span id="loss0">{number(info.loss)}'
            "</span>.</p><h3>Backward</h3>"
            + _figure(graph_svg, "The graph of the first step: each node's operation, "
                      "shape, values and gradient (d loss / d node) from the backward pass; "
                      "parameters in orange, data flowing downwards.", "graph")
            + _table(["parameter", "shape", "gradient norm"],
                     [[n, str(s), g] for n, s, g, _ in walk.parameters])
            + f'<p>Gradient norm ||g||: <span id="grad-norm0">{number(info.grad_norm)}'
            "</span>.</p>")


def _direction_body(walk: StepWalk, info: Any) -> str:
    """The step's direction: its slope, norm and angle with -g."""
    slope = getattr(info, "slope", None)
    d_norm = walk.direction_norm
    cosine = (-slope / (info.grad_norm * d_norm)
              if slope is not None and info.grad_norm > 0 and d_norm > 0 else None)
    body = ("<p>" + (f'Slope along the direction g . d: <span id="slope0">{number(slope)}'
                     "</span> (negative: a descent direction). " if slope is not None else "")
            + f'Direction norm ||d||: <span id="direction-norm0">{number(d_norm)}</span>'
            + (" (the search fell back to -g)" if info.fallback else "")
            + (f'; the cosine of the angle between d and -g, -g . d / (||g|| ||d||): '
               f'<span id="cosine0">{number(cosine)}</span> (1 for gradient descent)'
               if cosine is not None else "") + ".</p>")
    if info.lr > 0:
        body += _table(["parameter", "direction norm ||d_i||", "gradient norm ||g_i||"],
                       [[n, m / info.lr, g] for n, _, g, m in walk.parameters])
    return body


def _search_body(walk: StepWalk, info: Any) -> str:
    """The step size: the trials, the accepted alpha, the line-search picture."""
    trials = info.trials or ()
    body = _table(["trial", "alpha", "phi(alpha)", "phi'(alpha)"],
                  [[i + 1, t.alpha, t.value, t.slope] for i, t in enumerate(trials)])
    body += (f'<p>Accepted step size alpha = <span id="lr0">{number(info.lr)}</span> after '
             f'<span id="evaluations0">{number(info.evaluations)}</span> forward passes; '
             f"search status: {html.escape(str(getattr(info.status, 'value', info.status)))}"
             ".</p>")
    if walk.line_svg is not None:
        return body + _figure(walk.line_svg, "phi(alpha) = f(x + alpha d) along the first "
                              "step's direction on its batch, the trials in order, the "
                              "accepted step and the conditions the rule tests.",
                              "line-search")
    return body + f"<p>{html.escape(walk.line_note)}</p>"


def _update_body(walk: StepWalk, info: Any) -> str:
    """The update x + alpha d: its length and the loss it reached."""
    return (f'<p>||x1 - x0|| = alpha ||d|| = <span id="step-norm0">{number(info.step_norm)}'
            "</span>; the loss there: "
            f'<span id="new-loss0">{number(info.new_loss)}</span>.</p>'
            + _table(["parameter", "update norm"], [[n, m] for n, _, _, m in walk.parameters]))


def _run_body(history: Any) -> str:
    """The whole run: its figure, the first and last steps, the last epochs."""
    fig_svg = svg_text(run_figure(history))
    rows = [[i, history.loss[i], history.lr[i], history.evaluations[i], history.grad_norm[i]]
            for i in _head_tail(history.steps)]
    body = (_figure(fig_svg, f"{history.steps} steps: the loss from "
                    f"{number(history.loss[0])} to {number(history.loss[-1])}, "
                    f"{number(sum(history.evaluations))} forward passes in all.", "run")
            + _table(["step", "loss", "step size", "evaluations", "gradient norm"], rows,
                     cls="steps"))
    if history.epochs:
        body += _table(["epoch", "train loss", "validation loss", "validation accuracy"],
                       [[e.epoch, e.train_loss, e.val_loss, e.val_accuracy]
                        for e in history.epochs[-5:]])
    return body


def _stop_body(history: Any) -> str:
    """Why the run stopped: the criterion, its value and threshold, what it means."""
    reason = history.stop_reason
    rows = [] if reason is None else [["criterion", reason.criterion],
                                       ["value", reason.value], ["threshold", reason.threshold],
                                       ["step", reason.step], ["epoch", reason.epoch]]
    meaning = "" if reason is None else CRITERIA.get(reason.criterion, "")
    return (f'<p id="stop-reason">{html.escape(str(reason))}</p>'
            + (f'<p id="stop-meaning">{html.escape(meaning)}</p>' if meaning else "")
            + _table(["", ""], rows))


def write_report(path: str | Path, walk: StepWalk, history: Any, *, optimizer: Any,
                 title: str = "descend: the method, step by step", data_name: str = "") -> Path:
    """Write the report (atomically, as every output of descend)."""
    text = report_html(walk, history, title=title, optimizer=optimizer, data_name=data_name)
    write_output(path, lambda fh: fh.write(text.encode("utf-8")), what="report")
    return Path(path)
