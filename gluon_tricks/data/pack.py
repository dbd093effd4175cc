"""`gluon-tricks pack SRC_DIR OUT_PREFIX`: an image folder -> PREFIX.rec/.idx/.lst/.classes.txt,
as MXNet's im2rec makes them. Without --resize the bytes are stored as they are (im2rec's
--pass-through); all is written to temporary names renamed at the end (no half-written set)."""
import errno
import glob
import logging
import multiprocessing
import os

from gluon_tricks import files
from gluon_tricks.data import images
from gluon_tricks.data.workers import fork_workers
from gluon_tricks.data.sources import CLASSES_SUFFIX, DataSource
from gluon_tricks.errors import UserError

LOG = logging.getLogger(__name__)
DEFAULT_QUALITY = 95  # im2rec's default
_CHUNK = 16


def add_arguments(parser):
    parser.add_argument("src_dir", metavar="SRC_DIR", help="image folder: SRC_DIR/CLASS/IMAGE.jpg")
    parser.add_argument("out_prefix", metavar="OUT_PREFIX",
                        help="writes OUT_PREFIX.rec, .idx, .lst and .classes.txt (its folder is "
                             "created if need be)")
    parser.add_argument("--resize", type=int, default=0, metavar="N",
                        help="shrink the shorter side to N pixels (never enlarge) and re-encode "
                             "as JPEG; default: store the files as they are")
    parser.add_argument("--quality", type=int, default=DEFAULT_QUALITY, metavar="Q",
                        help="JPEG quality with --resize (default %d)" % DEFAULT_QUALITY)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), metavar="N",
                        help="parallel reader/encoder processes (default: cores, at most 8)")


def run(args):
    summary = pack_folder(args.src_dir, args.out_prefix, resize=args.resize,
                          quality=args.quality, workers=args.workers)
    print("packed %(written)d images of %(classes)d classes into %(rec)s (%(skipped)d unreadable "
          "images skipped, %(ignored)d non-image files ignored)" % summary)
    return 0


def encode_image(path, resize=0, quality=DEFAULT_QUALITY):
    """The bytes to store for one image file, or None if it cannot be read or decoded."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError:
        return None
    size = images.image_size(buf)
    if size is None or not images.looks_complete(buf):
        image = images.decode(buf)  # a header we do not parse: keep it if it decodes
        if image is None:
            return None
        size = image.shape[1], image.shape[0]
    if not resize or min(size) <= resize:
        return buf
    import cv2
    reduce = images.reduction_for(size[0], size[1], resize * size[0] // min(size),
                                  resize * size[1] // min(size))
    image = images.decode(buf, reduce)
    if image is None:
        return None
    height, width = image.shape[:2]
    scale = resize / min(width, height)
    new = (max(resize, int(round(width * scale))), max(resize, int(round(height * scale))))
    image = cv2.resize(image, new, interpolation=cv2.INTER_AREA)  # area: the better shrink
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return encoded.tobytes() if ok else None


def _encode_chunk(jobs):
    return [encode_image(*job) for job in jobs]


def _worker_init():
    import cv2
    cv2.setNumThreads(1)


def pack_folder(src_dir, out_prefix, resize=0, quality=DEFAULT_QUALITY, workers=0,
                progress=True):
    """Pack an image folder; returns a summary dict (written, skipped, ignored, classes, paths)."""
    if resize < 0:
        raise UserError("--resize must be 0 (keep) or a size in pixels, not %d" % resize)
    if not 1 <= quality <= 100:
        raise UserError("--quality must be in [1, 100], not %d" % quality)
    if workers < 0:
        raise UserError("--workers must be 0 or more, not %d" % workers)
    source = DataSource.from_folder(src_dir)
    out_prefix = os.path.expanduser(str(out_prefix))
    out_dir = os.path.dirname(os.path.abspath(out_prefix))
    try:
        os.makedirs(out_dir, exist_ok=True)  # as `pack SRC ~/rec/train` in the README needs
    except OSError as error:
        raise UserError("cannot create the output folder %s: %s"
                        % (out_dir, error.strerror or error)) from None
    paths = {ext: out_prefix + ext for ext in (".rec", ".idx", ".lst", CLASSES_SUFFIX)}
    temp = {ext: files.temp_name(out_prefix, ext) for ext in paths}
    for stale in files.remove_stale_temp_files(glob.escape(out_prefix) + files.TEMP_MARK + "*"):
        LOG.warning("removed %s, left by an interrupted pack", stale)
    jobs = [(os.path.join(source.path, source.entry(i)), resize, quality)
            for i in range(len(source))]
    if not resize:  # the files are stored as they are: their total size is what is written
        files.require_free_space(out_dir, sum(os.path.getsize(job[0]) for job in jobs),
                                 "the packed images")
    try:
        written, skipped = _write(source, jobs, temp, workers, progress)
        with open(temp[CLASSES_SUFFIX], "w") as f:
            f.write("".join(name + "\n" for name in source.classes))
        for ext in (".lst", CLASSES_SUFFIX, ".rec", ".idx"):  # the .idx last: readers look for it
            os.replace(temp[ext], paths[ext])
    except OSError as error:
        raise files.disk_error(error, temp[".rec"]) from None
    except Exception as error:  # pylint: disable=broad-except
        if files.looks_like_full_disk(error, temp[".rec"]):  # MXNet's writer says less
            raise files.disk_error(OSError(errno.ENOSPC, "No space left"), temp[".rec"]) from None
        raise
    finally:
        for path in temp.values():  # the partial files of a failed pack go
            if os.path.exists(path):
                os.remove(path)
    if skipped:
        LOG.warning("%s: skipped %d images that cannot be decoded", src_dir, skipped)
    return {"written": written, "skipped": skipped, "ignored": source.ignored,
            "classes": source.num_classes, "rec": paths[".rec"], "idx": paths[".idx"],
            "lst": paths[".lst"], "classes_file": paths[CLASSES_SUFFIX]}


def _watched(pool, results):
    """The pool's results in order; a dead worker (whose chunk multiprocessing.Pool would never
    redo, waiting forever) stops the pack with an error."""
    workers = list(pool._pool)  # private, but the only record of which processes ran the work
    while True:
        try:
            yield from results.next(timeout=1.0)  # a chunk of results
        except StopIteration:
            return
        except multiprocessing.TimeoutError:
            dead = [w for w in workers if w.exitcode is not None]
            if dead:
                raise UserError("pack: worker process %d died (%s) and its images were lost; "
                                "run pack again, with fewer --workers if memory is short"
                                % (dead[0].pid, "killed by signal %d" % -dead[0].exitcode
                                   if dead[0].exitcode < 0 else "exit code %d"
                                   % dead[0].exitcode)) from None


def _write(source, jobs, temp, workers, progress):
    """Encode the jobs in order (in parallel) and write records, the .idx and the .lst."""
    import mxnet as mx
    from tqdm import tqdm
    pool = None
    if workers > 0:
        context = multiprocessing.get_context("fork")
        pool = fork_workers(lambda: context.Pool(workers, initializer=_worker_init))
        chunks = [jobs[i:i + _CHUNK] for i in range(0, len(jobs), _CHUNK)]
        results = _watched(pool, pool.imap(_encode_chunk, chunks))
    else:
        results = (encode_image(*job) for job in jobs)
    record = mx.recordio.MXIndexedRecordIO(temp[".idx"], temp[".rec"], "w")
    written = skipped = 0
    try:
        with open(temp[".lst"], "w") as lst, tqdm(total=len(jobs), unit="img", disable=not progress,
                                                  desc="pack", mininterval=1.0) as bar:
            for i, encoded in enumerate(results):
                bar.update(1)
                if encoded is None:
                    skipped += 1
                    continue
                label = int(source.labels[i])
                header = mx.recordio.IRHeader(0, float(label), written, 0)
                record.write_idx(written, mx.recordio.pack(header, encoded))
                # im2rec's list format: index, label(s) as floats, relative path
                lst.write("%d\t%f\t%s\n" % (written, label, source.entry(i)))
                written += 1
    finally:
        record.close()
        if pool is not None:
            pool.terminate()
    if written == 0:
        raise UserError("%s: none of the %d images could be decoded" % (source.path, len(jobs)))
    return written, skipped
