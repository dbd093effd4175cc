"""`gluon-tricks eval`: top-1/top-5 error of trained weights on validation data, and optionally
the logits file for Figure 4(b). Settings the weights were trained with (model, input size, label
smoothing eps) are read from their checkpoint's JSON when it lies beside them."""
import json

from gluon_tricks.data.flags import add_data_arguments, data_sources
from gluon_tricks.devices import process_devices
from gluon_tricks.evaluation.logits_file import describe_data, save_logits
from gluon_tricks.evaluation.validation import compute_logits, count_correct
from gluon_tricks.inference import (INPUT_SIZE_HELP, add_weights_arguments, say,
                                    trained_weights)


def add_arguments(parser):
    add_weights_arguments(parser, input_size=False, classes=False)  # --input-size: below
    add_data_arguments(parser, train=False)
    parser._option_string_actions["--input-size"].help = INPUT_SIZE_HELP
    parser.add_argument("--num-gpus", type=int, default=0, help="GPUs to use (0: CPU; "
                        "GLUON_TRICKS_DEVICES names stand-ins, as for training)")
    parser.add_argument("--save-logits", metavar="FILE", help="also save the logits, the labels, "
                        "the model, its eps and the data (.npz, read by `plot gap`)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args):
    trained = trained_weights(args.params, args.model, args.input_size, args.force)
    ctx = process_devices(args.num_gpus)
    _, source = data_sources(args, train=False)
    logits, labels = compute_logits(trained.model, args.params, source, trained.input_size,
                                    args.crop_ratio, args.batch_size, args.num_workers, ctx)
    say(trained.notes)
    top1, top5 = count_correct(logits, labels)
    result = {"model": trained.model, "params": args.params, "images": int(len(labels)),
              "err_top1": 1.0 - top1 / len(labels), "err_top5": 1.0 - top5 / len(labels)}
    if args.save_logits:
        save_logits(args.save_logits, logits, labels, trained.model,
                    eps=trained.config.get("eps"), params=args.params,
                    data=describe_data(source, trained.input_size, args.crop_ratio))
        result["logits"] = args.save_logits
    if args.json:
        print(json.dumps(result))
    else:
        print("%s on %d images: err-top1=%.4f err-top5=%.4f (top-1 accuracy %.2f%%)"
              % (trained.model, result["images"], result["err_top1"], result["err_top5"],
                 100 * (1 - result["err_top1"])))
        if args.save_logits:
            print("logits saved to %s" % args.save_logits)
    return 0
