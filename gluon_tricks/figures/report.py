"""`gluon-tricks report LOG...`: the ablation table in the paper's form (Tables 3-6), one row per
training log, as Markdown or JSON, optionally beside the paper's own numbers.

Imports no MXNet: reports are read on laptops, long after the cluster run.
"""
import json
import math
import statistics
import sys

from gluon_tricks.errors import UserError
from gluon_tricks.paper import match as paper_row_of
from gluon_tricks.figures import log_checks, logparse, transfer_logs, tricks

def add_arguments(parser):
    parser.add_argument("logs", nargs="*", metavar="LOG",
                        help="training logs (GluonCV's or this project's), or folders of them")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list of objects (each with its `warnings`) instead of "
                             "a Markdown table")
    parser.add_argument("--paper", action="store_true",
                        help="add the paper's top-1/top-5 for the matching row (Tables 2-6; for "
                             "detection/segmentation logs the Table 8/9 row of their backbone) and "
                             "the difference (final - paper)")
    parser.add_argument("--group-seeds", action="store_true",
                        help="one row per configuration (model, tricks, epochs) over its seeds: "
                             "mean and standard deviation of the final top-1, and whether each "
                             "row differs from the one before it by more than the noise")


def run(args):
    if not args.logs:
        raise UserError("no log file given")
    paths, transfer = transfer_logs.split_paths(args.logs, logparse.expand_log_paths)
    if transfer and not paths:  # GluonCV's detection/segmentation logs: Tables 8-9
        rows = transfer_logs.report_rows(transfer, paper=args.paper)
        print(json.dumps(rows, indent=2) if args.json else transfer_logs.markdown(rows,
                                                                                  args.paper))
        return 0
    if transfer:
        warn(transfer_logs.left_out(transfer))
    logs = logparse.load_logs(paths, warn)
    rows = [summarise(log, paper=args.paper, warnings=warnings)
            for log, warnings in zip(logs, log_checks.warnings_of(logs))]
    if args.group_seeds:
        groups = seed_groups(rows, logs)
        print(json.dumps(groups, indent=2) if args.json else seed_markdown(groups))
        return 0
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(markdown(rows, paper=args.paper))
    return 0


def warn(message):
    print("gluon-tricks: warning: %s" % message, file=sys.stderr)


def _percent(fraction):
    return None if fraction is None else round(100.0 * fraction, 4)


def summarise(log, paper=False, warnings=None):
    """One table row: accuracies in percent (None where the log has none), epochs run (last
    logged epoch + 1), median training speed in samples/sec (per-epoch lines, else batch lines),
    and the log's defects (`warnings`, from log_checks.warnings_of; this log's alone if None)."""
    records = log.validated()
    top5s = [r.top5 for r in records if r.top5 is not None]
    final = records[-1] if records else None
    speeds = [r.speed for _, r in sorted(log.epochs.items()) if r.speed is not None] or \
             [b.speed for b in log.batches if b.speed is not None]
    model = tricks.model_of(log.config, log.path)
    used = tricks.tricks_of(log.config)
    row = {
        "log": log.path,
        "model": model,
        "tricks": used,
        "epochs": max(log.epochs) + 1 if log.epochs else 0,
        "best_top1": _percent(max(r.top1 for r in records)) if records else None,
        "best_top5": _percent(max(top5s)) if top5s else None,
        "final_top1": _percent(final.top1) if final else None,
        "final_top5": _percent(final.top5) if final else None,
        "speed": round(statistics.median(speeds), 1) if speeds else None,
        "warnings": list(log_checks.warnings_of([log])[0] if warnings is None else warnings),
    }
    if paper:
        row["batch"] = tricks.batch_of(log.config, log.format)
        row["paper"] = _paper_entry(model, used, row)
    return row


def _paper_entry(model, used, row):
    """The matching row of the paper and final minus paper, or None."""
    match = paper_row_of(model, used, row["batch"])
    if match is None:
        return None

    def difference(ours, theirs):
        return None if ours is None or theirs is None else round(ours - theirs, 2)
    return {"table": match.table, "row": match.label, "top1": match.top1, "top5": match.top5,
            "diff_top1": difference(row["final_top1"], match.top1),
            "diff_top5": difference(row["final_top5"], match.top5)}


def _cell(value, digits=2, signed=False):
    if value is None:
        return "-"
    if isinstance(value, float):
        return ("%+.*f" if signed else "%.*f") % (digits, value)
    return str(value).replace("|", "\\|")


def markdown(rows, paper=False):
    """The Markdown table, then notes on how to read it and the warnings about each log."""
    header = ["log", "model", "tricks", "epochs", "best top-1", "best top-5", "final top-1",
              "final top-5", "speed (samples/s)"]
    if paper:
        header += ["paper", "paper top-1", "paper top-5", "Δ top-1", "Δ top-5"]
    header.append("warnings")
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * 3 + ["---:"] * 6 + (["---"] + ["---:"] * 4 if paper else [])
                            + ["---:"]) + "|"]
    for row in rows:
        cells = [_cell(row["log"]), _cell(row["model"]),
                 _cell(", ".join(row["tricks"]) or "baseline"), _cell(row["epochs"])]
        cells += [_cell(row[k]) for k in ("best_top1", "best_top5", "final_top1", "final_top5")]
        cells.append(_cell(row["speed"], digits=1))
        if paper:
            entry = row["paper"] or {}
            cells.append(_cell("%s: %s" % (entry["table"], entry["row"]) if entry else None))
            cells += [_cell(entry.get("top1")), _cell(entry.get("top5")),
                      _cell(entry.get("diff_top1"), signed=True),
                      _cell(entry.get("diff_top5"), signed=True)]
        cells.append(_cell(len(row["warnings"]) or None))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Accuracies in %; final = the last epoch with a validation line; epochs = last "
              "logged epoch + 1; speed = median training samples/sec."]
    if paper:
        lines.append("Δ = final - paper (percentage points); paper numbers transcribed from "
                     "He et al. (CVPR 2019), Tables 2-6.")
    warned = [row for row in rows if row["warnings"]]
    if warned:
        lines += ["", "Warnings:"]
        lines += ["- %s: %s." % (row["log"], "; ".join(row["warnings"])) for row in warned]
    return "\n".join(lines)


def configuration_groups(logs):
    """The logs of one configuration (same model, tricks and epochs), run with different seeds:
    lists of indices into `logs`, in the order first seen."""
    groups = {}
    for index, log in enumerate(logs):
        key = (tricks.model_of(log.config, log.path), tuple(tricks.tricks_of(log.config)),
               max(log.epochs) + 1 if log.epochs else 0)
        groups.setdefault(key, []).append(index)
    return list(groups.values())


def seed_groups(rows, logs):
    """Rows of one configuration (`configuration_groups`) as one group each: the final top-1 of
    every seed, its mean and sample standard deviation, and the comparison with the previous
    group (see `beyond_noise`)."""
    groups = []
    for indices in configuration_groups(logs):
        group = {key: rows[indices[0]][key] for key in ("model", "tricks", "epochs")}
        group.update(seeds=[logs[i].config.get("seed") for i in indices],
                     final_top1=[rows[i]["final_top1"] for i in indices],
                     logs=[rows[i]["log"] for i in indices])
        finals = [v for v in group["final_top1"] if v is not None]
        group["mean_top1"] = round(statistics.mean(finals), 4) if finals else None
        group["std_top1"] = round(statistics.stdev(finals), 4) if len(finals) > 1 else None
        group["versus_previous"] = beyond_noise(groups[-1], group) if groups else None
        groups.append(group)
    return groups


def beyond_noise(before, after):
    """The change of mean final top-1 from `before` to `after`, its standard error
    sqrt(s1^2/n1 + s2^2/n2), and whether |change| exceeds twice that error (about a 95% two-sided
    bound; with 3 seeds a coarse one). None where either group has fewer than two seeds."""
    a = [v for v in before["final_top1"] if v is not None]
    b = [v for v in after["final_top1"] if v is not None]
    if len(a) < 2 or len(b) < 2:
        return None
    change = statistics.mean(b) - statistics.mean(a)
    error = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    return {"change": round(change, 4), "stderr": round(error, 4),
            "exceeds_noise": abs(change) > 2 * error}


def seed_markdown(groups):
    """The grouped table: one row per configuration, mean +- std over its seeds."""
    lines = ["| model | tricks | epochs | seeds | final top-1 % (each seed) | mean | std | "
             "change vs row above | beyond noise |",
             "|---|---|---:|---|---|---:|---:|---:|---|"]
    for group in groups:
        versus = group["versus_previous"]
        lines.append("| %s |" % " | ".join([
            _cell(group["model"]), _cell(", ".join(group["tricks"]) or "baseline"),
            _cell(group["epochs"]), _cell(", ".join(str(s) for s in group["seeds"])),
            _cell(", ".join(_cell(v) for v in group["final_top1"])),
            _cell(group["mean_top1"]), _cell(group["std_top1"]),
            _cell(versus["change"], signed=True) if versus else "-",
            ("yes" if versus["exceeds_noise"] else "no") if versus else "-"]))
    lines += ["", "Runs of the same model, tricks and epochs form one row; std = sample standard "
              "deviation over seeds; beyond noise = |change| > 2 x sqrt(s1^2/n1 + s2^2/n2)."]
    return "\n".join(lines)
