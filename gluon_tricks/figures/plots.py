"""Drawing the paper's figures with matplotlib from data already read: on a `Figure` with an
explicit Agg canvas (no pyplot, no global state); `save` writes PNG, SVG or PDF."""
import functools
import os
import textwrap

import numpy as np

from gluon_tricks.errors import UserError

FORMATS = ("png", "svg", "pdf")
_STYLE = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8.5,
          "axes.spines.top": False, "axes.spines.right": False}


def _styled(draw):
    """Run a drawing function under this module's matplotlib style."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        import matplotlib
        with matplotlib.rc_context(_STYLE):
            return draw(*args, **kwargs)
    return wrapper


def _figure(width, height):
    """A new figure with the Agg canvas selected."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _axes(width=7.0, height=4.4):
    """A new figure and its one axes."""
    figure = _figure(width, height)
    axes = figure.add_subplot()
    axes.grid(True, alpha=0.3, linewidth=0.6)
    return figure, axes


@_styled
def save(figure, path, fmt):
    """Write the figure to `path` in `fmt` (png at 150 dpi), making its folder if needed."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        figure.savefig(path, format=fmt, dpi=150)
    except OSError as error:
        raise UserError("cannot write %s: %s" % (path, error.strerror or error)) from None
    return path


def _legend(axes, **kwargs):
    with_labels = [h for h in axes.get_legend_handles_labels()[1] if not h.startswith("_")]
    if with_labels:
        axes.legend(frameon=False, **kwargs)


@_styled
def lr_figure(series, title):
    """Figure 3(a): learning rate against epoch; `series` is [(label, epochs, lrs)]."""
    figure, axes = _axes()
    for label, epochs, lrs in series:
        axes.plot(epochs, lrs, label=label, linewidth=1.6)
    axes.set_xlabel("epoch")
    axes.set_ylabel("learning rate")
    axes.set_title(title)
    axes.set_xlim(left=0)
    axes.set_ylim(0, 1.3 * max(max(lrs) for _, _, lrs in series))  # room for the legend
    _legend(axes, loc="upper right")
    return figure


@_styled
def curves_figure(series, title="Figure 3(b): validation top-1 accuracy"):
    """Figure 3(b): top-1 (%) against epoch; `series` is [(label, epochs, top-1 %[, (low, high)
    band])]."""
    below = len(series) > 4  # a long legend goes under the axes, not over the curves
    figure, axes = _axes(height=4.4 + 0.2 * len(series) * below)
    for index, (label, epochs, top1, *band) in enumerate(series):
        few = len(epochs) <= 30
        axes.plot(epochs, top1, label=label, linewidth=1.5, marker="o" if few else None,
                  markersize=3, color="C%d" % index)
        if band and band[0] is not None:
            axes.fill_between(epochs, *band[0], color="C%d" % index, alpha=0.18, linewidth=0)
    from matplotlib.ticker import MaxNLocator
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epochs trained")
    axes.set_ylabel("validation top-1 accuracy (%)")
    axes.set_title(title)
    axes.set_xlim(left=0)
    if below:
        figure.legend(loc="outside lower center", frameon=False)
    else:
        _legend(axes, loc="best")
    return figure


@_styled
def gap_theory_figure(curves, mark):
    """Figure 4(a): the optimal gap against eps, `curves` [(K, eps, gap)], `mark` (K, eps, gap)."""
    figure, axes = _axes()
    for classes, eps, gap in curves:
        axes.plot(eps, gap, linewidth=1.6, label="K = %d classes" % classes)
    classes, eps, gap = mark
    axes.plot([eps], [gap], "o", color="black", markersize=5, zorder=3)
    axes.annotate("ε = %g, K = %d: gap %.2f" % (eps, classes, gap), (eps, gap),
                  xytext=(12, 8), textcoords="offset points")
    axes.axhline(0, color="grey", linewidth=0.8)
    axes.set_xlabel("label smoothing ε")
    axes.set_ylabel("optimal gap log((K−1)(1−ε)/ε)  (logit units)")
    axes.set_title("Figure 4(a): theoretical gap between the true-class logit and the others")
    axes.set_xlim(0, 1)
    _legend(axes, loc="upper right")
    return figure


@_styled
def gap_figure(items, marks, eps):
    """Figure 4(b): the empirical gap per model, [(label, gaps)], and optima [(K, gap)] as lines."""
    figure, axes = _axes()
    values = np.concatenate([gaps for _, gaps in items] + [np.array([g for _, g in marks])])
    low, high = float(np.min(values)), float(np.max(values))
    if high - low < 1e-6:
        low, high = low - 0.5, high + 0.5
    bins = np.linspace(low, high, int(np.clip(np.sqrt(max(len(g) for _, g in items)), 10, 80)) + 1)
    for index, (label, gaps) in enumerate(items):
        color = "C%d" % index
        axes.hist(gaps, bins=bins, density=True, histtype="stepfilled", alpha=0.3, color=color)
        axes.hist(gaps, bins=bins, density=True, histtype="step", linewidth=1.4, color=color,
                  label=label)
    for index, (classes, value) in enumerate(marks):
        axes.axvline(value, color="black", linestyle=("--", ":", "-.")[index % 3], linewidth=1.2,
                     label="optimum under label smoothing ε = %g, K = %d: %.2f"
                     % (eps, classes, value))
    axes.set_xlabel("gap: largest logit − mean of the other logits (logit units)")
    axes.set_ylabel("density (fraction of images per unit gap)")
    axes.set_title("Figure 4(b): distribution of the logit gap over the validation set")
    _legend(axes, loc="upper right")
    return figure


@_styled
def depth_figure(series, paper_points):
    """Table 5 across depths: top-1 (%) against multiply-adds (G), one line per ResNet variant;
    `series` is [(label, [(macs G, top-1 %, depth)])], `paper_points` [(label, macs G, top-1 %)]."""
    figure, axes = _axes(7.5, 4.8)
    markers = "osD^v<>"
    for index, (label, points) in enumerate(series):
        macs, top1, depths = zip(*points)
        axes.plot(macs, top1, marker=markers[index % len(markers)], linewidth=1.4,
                  markersize=5, color="C%d" % index, label=label)
        fullest = max(range(len(series)), key=lambda i: len(series[i][1]))
        if index == fullest:  # the depths, once, along the variant with most of them
            for x, y, depth in points:
                axes.annotate("%d" % depth, (x, y), xytext=(4, -11), textcoords="offset points",
                              fontsize=8, color="0.35")
    for index, (label, macs, top1) in enumerate(paper_points):
        axes.plot([macs], [top1], linestyle="none", marker=markers[index % len(markers)],
                  markersize=7, markerfacecolor="none", color="C%d" % index, label=label)
    axes.set_xlabel("multiply-adds per 224x224 image (G, `gluon-tricks models`); "
                    "numbers: depth")
    axes.set_ylabel("final validation top-1 (%)")
    axes.set_title("Table 5 across depths: GluonCV's ResNet-A/B/C/D runs (filled)\n"
                   "and the paper's ResNet-50 (hollow; step decay, no label smoothing)")
    _legend(axes, loc="lower right", ncol=2)
    return figure


@_styled
def panels_figure(panels):
    """Small validation-curve plots, [(title, note, [(label, epochs, top-1 %)])], side by side."""
    columns = min(3, len(panels))
    rows = (len(panels) + columns - 1) // columns
    figure = _figure(4.2 * columns, 3.4 * rows)
    for index, (title, note, series) in enumerate(panels):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.grid(True, alpha=0.3, linewidth=0.6)
        for number, (label, epochs, top1) in enumerate(series):
            axes.plot(epochs, top1, linewidth=1.3, color="C%d" % number, label=label)
        # the panel's defect, if any, under its title
        axes.set_title(title + ("\n" + textwrap.fill(note, 52) if note else ""),
                       fontsize=9 if note else None)
        axes.set_xlabel("epochs trained")
        axes.set_ylabel("validation top-1 (%)")
        axes.set_xlim(0, 205)
        axes.set_ylim(30, 85)
        axes.legend(frameon=False, loc="lower right", fontsize=7.5)
    figure.suptitle("Mixup and the longer schedule in GluonCV's runs (120 vs 200 epochs)")
    return figure


@_styled
def lr_agreement_figure(logged, schedule, difference, title):
    """A log's lr= values (dots) over a schedule (line), both (epochs, lrs), and below the
    difference at the logged epochs."""
    figure = _figure(7.5, 5.6)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1.3))
    for axes in (top, bottom):
        axes.grid(True, alpha=0.3, linewidth=0.6)
    top.plot(*schedule, linewidth=1.6, color="C0", label="gluon-tricks train's schedule")
    top.plot(*logged, linestyle="none", marker=".", markersize=2.5, color="C3",
             label="lr= in GluonCV's log (every 50 batches)")
    top.set_ylabel("learning rate")
    top.set_ylim(bottom=0)
    top.set_title(textwrap.fill(title, 80), fontsize=9.5)
    top.legend(frameon=False, loc="upper right")
    bottom.plot(logged[0], difference, linestyle="none", marker=".", markersize=2, color="C3")
    bottom.axhline(0, color="grey", linewidth=0.8)
    bottom.set_xlabel("epoch")
    bottom.set_ylabel("log − trainer")
    bottom.set_xlim(left=0)
    return figure
