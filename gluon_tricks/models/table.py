"""`gluon-tricks models`: the paper's Table 5 columns (parameters, multiply-adds) for every ResNet,
computed from the networks themselves by shape inference."""
import json

from gluon_tricks.models import RESNET_NAMES, get_model, parse_resnet_name
from gluon_tricks.models.complexity import count_multiply_adds, count_parameters
from gluon_tricks.models.resnet import PAPER_NAMES


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print a JSON list of "
                        "{model, params, macs} instead of the table")
    parser.add_argument("--input-size", type=int, default=224, help="image side (default 224)")


def model_rows(names=RESNET_NAMES, input_size=224):
    """One {model, params, macs} dict per network name."""
    shape = (1, 3, input_size, input_size)
    rows = []
    for name in names:
        net = get_model(name)
        rows.append({"model": name, "params": count_parameters(net, shape),
                     "macs": count_multiply_adds(net, shape)})
    return rows


def format_table(rows, input_size):
    lines = ["| model | paper name | params (M) | multiply-adds at %dx%d (G) |"
             % (input_size, input_size), "|---|---|---:|---:|"]
    for row in rows:
        depth, variant = parse_resnet_name(row["model"])
        lines.append("| %s | %s-%d | %.2f | %.2f |" % (row["model"], PAPER_NAMES[variant], depth,
                                                     row["params"] / 1e6, row["macs"] / 1e9))
    return "\n".join(lines)


def run(args):
    rows = model_rows(input_size=args.input_size)
    print(json.dumps(rows, indent=1) if args.json else format_table(rows, args.input_size))
    return 0
