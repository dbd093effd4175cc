"""`gluon-tricks report LOG...`: the ablation table in the paper's form (Tables 3-6), one row per
training log, as Markdown or JSON, optionally beside the paper's own numbers.

Imports no MXNet: reports are read on laptops, long after the cluster run.
"""
import json
import statistics
import sys

from gluon_tricks.paper import match as paper_row_of
from gluon_tricks.figures import logparse, tricks

def add_arguments(parser):
    parser.add_argument("logs", nargs="*", metavar="LOG",
                        help="training logs (GluonCV's or this project's), or folders of them")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list of objects instead of a Markdown table")
    parser.add_argument("--paper", action="store_true",
                        help="add the paper's top-1/top-5 for the matching row (Tables 2-6) and "
                             "the difference (final - paper)")


def run(args):
    logs = logparse.load_logs(args.logs, _warn)
    rows = [summarise(log, paper=args.paper) for log in logs]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(markdown(rows, logs, paper=args.paper))
    return 0


def _warn(message):
    print("gluon-tricks: warning: %s" % message, file=sys.stderr)


def _percent(fraction):
    return None if fraction is None else round(100.0 * fraction, 4)


def summarise(log, paper=False):
    """One table row: accuracies in percent (None where the log has none), epochs run (last
    logged epoch + 1), median training speed in samples/sec (per-epoch lines, else batch lines)."""
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
    }
    if paper:
        row["batch"] = tricks.batch_of(log.config)
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


def markdown(rows, logs, paper=False):
    """The Markdown table, then notes on how to read it and on defects found in the logs."""
    header = ["log", "model", "tricks", "epochs", "best top-1", "best top-5", "final top-1",
              "final top-5", "speed (samples/s)"]
    if paper:
        header += ["paper", "paper top-1", "paper top-5", "Δ top-1", "Δ top-5"]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * 3 + ["---:"] * 6 + (["---"] + ["---:"] * 4 if paper else []))
             + "|"]
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
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Accuracies in %; final = the last epoch with a validation line; epochs = last "
              "logged epoch + 1; speed = median training samples/sec."]
    if paper:
        lines.append("Δ = final - paper (percentage points); paper numbers transcribed from "
                     "He et al. (CVPR 2019), Tables 2-6.")
    for log in logs:
        notes = []
        if log.restarts:
            notes.append("%d restart(s): repeated epochs were replaced by the later run"
                         % log.restarts)
        if log.truncated:
            notes.append("the last line was cut off and skipped")
        if log.epochs and not log.validated():
            notes.append("no validation lines")
        if notes:
            lines.append("- %s: %s." % (log.path, "; ".join(notes)))
    return "\n".join(lines)
