"""`gluon-tricks bench data`: images/s of our paper-exact training pipeline and of MXNet's C++
mx.io.ImageRecordIter with GluonCV's settings, side by side on the same .rec, in one run.
The pipelines take turns (warmed up, then timed) in alternating rounds, never at the same time.
"""
import json
import os
import time

from gluon_tricks.errors import UserError

GLUONCV_JITTER, GLUONCV_LIGHTING = 0.4, 0.1
WARMUP_BATCHES = 8  # more than either pipeline buffers ahead (ours: workers + 4, MXNet's: 4)


def add_arguments(parser):
    """The flags of `bench data` (the `bench` command itself is gluon_tricks/bench_train.py)."""
    parser.add_argument("--rec", required=True, help="RecordIO file to read")
    parser.add_argument("--idx", default=None, help="its index (default: REC with .idx)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="our worker processes and ImageRecordIter's preprocess_threads "
                             "(default: all cores)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per batch")
    parser.add_argument("--input-size", type=int, default=224, help="crop size in pixels")
    parser.add_argument("--images", type=int, default=1024,
                        help="images timed per pipeline and round (default 1024)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("--json", action="store_true",
                        help='print {"ours": ..., "recorditer": ..., "ratio": ...} only')


def run(args):
    from gluon_tricks.data.sources import DataSource
    if args.images < args.batch_size or args.rounds < 1 or args.workers < 1:
        raise UserError("--images must be at least --batch-size, --rounds and --workers >= 1")
    source = DataSource.from_rec(args.rec, args.idx)
    result = bench_data(source, args.workers, args.batch_size, args.input_size, args.images,
                        args.rounds, idx_path=args.idx)
    if args.json:
        print(json.dumps({k: result[k] for k in ("ours", "recorditer", "ratio")}))
    else:
        print("input pipeline on %s (%d images), %d workers, batch %d, %dx%d:\n"
              "  ours (paper flavour)              %8.1f images/s\n"
              "  mx.io.ImageRecordIter (GluonCV)  %8.1f images/s\n"
              "  ratio                             %8.2f"
              % (source.path, len(source), args.workers, args.batch_size, args.input_size,
                 args.input_size, result["ours"], result["recorditer"], result["ratio"]))
    return 0


def _timed(batches, count):
    """Seconds to pull `count` images out of the endless batch iterator (data made ready)."""
    seen, start = 0, time.perf_counter()
    while seen < count:
        data = next(batches)
        data.wait_to_read()
        seen += data.shape[0]
        del data
    return seen, time.perf_counter() - start


def endless_batches(source, workers, batch_size, input_size, with_labels=False, rank=0,
                    num_ranks=1):
    """Our training batches (paper flavour), data or (data, label), epoch after epoch."""
    from gluon_tricks.data.loader import TrainLoader
    loader = TrainLoader(source, batch_size, input_size, flavour="paper", num_workers=workers,
                         rank=rank, num_ranks=num_ranks)
    try:
        epoch = 0
        while True:
            for data, label in loader.epoch(epoch):
                yield (data, label) if with_labels else data
            epoch += 1
    finally:
        loader.close()


def _recorditer(source, idx_path, workers, batch_size, input_size):
    """mx.io.ImageRecordIter as GluonCV's train_imagenet.py --use-rec configures it."""
    import mxnet as mx
    from gluon_tricks.data.transforms import MEAN_RGB, STD_RGB
    it = mx.io.ImageRecordIter(
        path_imgrec=source.path, path_imgidx=idx_path, preprocess_threads=workers, shuffle=True,
        batch_size=batch_size, data_shape=(3, input_size, input_size),
        mean_r=MEAN_RGB[0], mean_g=MEAN_RGB[1], mean_b=MEAN_RGB[2],
        std_r=STD_RGB[0], std_g=STD_RGB[1], std_b=STD_RGB[2],
        rand_mirror=True, random_resized_crop=True, max_aspect_ratio=4. / 3.,
        min_aspect_ratio=3. / 4., max_random_area=1, min_random_area=0.08,
        brightness=GLUONCV_JITTER, saturation=GLUONCV_JITTER, contrast=GLUONCV_JITTER,
        pca_noise=GLUONCV_LIGHTING)
    try:
        while True:
            for batch in it:
                yield batch.data[0][:batch_size - batch.pad]
            it.reset()
    finally:
        del it  # joins its threads


def bench_data(source, workers, batch_size=64, input_size=224, images=1024, rounds=2,
               idx_path=None):
    """{"ours", "recorditer": images/s, "ratio": ours / recorditer} on a .rec DataSource."""
    if len(source) < batch_size:
        raise UserError("%s has %d images, fewer than one batch of %d"
                        % (source.path, len(source), batch_size))
    idx_path = idx_path or os.path.splitext(source.path)[0] + ".idx"
    pipelines = {"ours": lambda: endless_batches(source, workers, batch_size, input_size),
                 "recorditer": lambda: _recorditer(source, idx_path, workers, batch_size,
                                                   input_size)}
    totals = {name: [0, 0.0] for name in pipelines}
    for _ in range(rounds):
        for name, start in pipelines.items():
            batches = start()
            for _ in range(WARMUP_BATCHES):
                next(batches).wait_to_read()
            seen, seconds = _timed(batches, images)
            batches.close()
            totals[name][0] += seen
            totals[name][1] += seconds
    result = {name: seen / seconds for name, (seen, seconds) in totals.items()}
    result["ratio"] = result["ours"] / result["recorditer"]
    return result
