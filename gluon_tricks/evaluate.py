"""`gluon-tricks eval`: top-1/top-5 error of trained weights on validation data, and optionally
the logits file for Figure 4(b). Settings the weights were trained with (model, input size, label
smoothing eps) are read from their checkpoint's JSON when it lies beside them."""
from gluon_tricks.errors import UserError


def add_arguments(parser):
    from gluon_tricks.data.flags import add_data_arguments
    parser.add_argument("--model", help="network name, e.g. resnet50_v1d (default: the model of "
                        "the checkpoint the --params belong to)")
    parser.add_argument("--params", required=True, help="trained weights (.params)")
    add_data_arguments(parser, train=False)
    parser.add_argument("--num-gpus", type=int, default=0, help="GPUs to use (0: CPU)")
    parser.add_argument("--save-logits", metavar="FILE", help="also save the logits, the labels, "
                        "the model, its eps and the data (.npz, read by `plot gap`)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args):
    import json
    from gluon_tricks.data.flags import data_sources, input_size
    from gluon_tricks.evaluation.logits_file import describe_data, save_logits
    from gluon_tricks.evaluation.validation import compute_logits, count_correct
    from gluon_tricks.training.config import check_devices
    from gluon_tricks.training.run_config import saved_run_config
    trained = saved_run_config(args.params) or {}
    model = args.model or trained.get("model")
    if not model:
        raise UserError("--model is needed: %s has no checkpoint JSON beside it to read it from"
                        % args.params)
    if trained.get("model") not in (None, model):
        trained = {}  # another network's checkpoint: its settings do not apply
    args.dtype = "float32"
    check_devices(args)
    _, source = data_sources(args, train=False)
    size = input_size(args.input_size or trained.get("input_size"), model)
    logits, labels = compute_logits(model, args.params, source, size, args.crop_ratio,
                                    args.batch_size, args.num_workers, args.num_gpus)
    top1, top5 = count_correct(logits, labels)
    result = {"model": model, "params": args.params, "images": int(len(labels)),
              "err_top1": 1.0 - top1 / len(labels), "err_top5": 1.0 - top5 / len(labels)}
    if args.save_logits:
        save_logits(args.save_logits, logits, labels, model, eps=trained.get("eps"),
                    data=describe_data(source, size, args.crop_ratio), params=args.params)
        result["logits"] = args.save_logits
    if args.json:
        print(json.dumps(result))
    else:
        print("%s on %d images: err-top1=%.4f err-top5=%.4f (top-1 accuracy %.2f%%)"
              % (model, result["images"], result["err_top1"], result["err_top5"],
                 100 * (1 - result["err_top1"])))
        if args.save_logits:
            print("logits saved to %s" % args.save_logits)
    return 0
