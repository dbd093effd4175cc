"""Where labelled encoded images come from: a RecordIO file with its index, or an image folder
(labels: the sorted class-folder names, as im2rec). A source holds only paths, offsets and labels,
so it forks cheaply; each process opens the .rec itself and reads with pread."""
import logging
import math
import os

import numpy as np

from gluon_tricks.data import images, recordio
from gluon_tricks.errors import UserError

LOG = logging.getLogger(__name__)
CLASSES_SUFFIX = ".classes.txt"  # PREFIX.classes.txt beside PREFIX.rec: class names, one a line


class DataSource:
    """N labelled images: `read(i)` gives (label, encoded bytes) of image i, or raises
    recordio.CorruptRecord; `labels`, `classes`, `num_classes`, `len()` describe the set."""

    def __init__(self, kind, path, entries, labels, classes, ignored=0, unreadable=0,
                 classes_named=True):
        self.kind = kind            # "rec" or "folder"
        self.path = path            # the .rec file or the folder root
        self._entries = entries     # record offsets (rec) or relative file paths (folder)
        self.labels = labels        # int64 array; -1 where a record's header is unreadable
        self.classes = classes      # class names, index = label
        self.ignored = ignored      # non-image files (and nested folders) left out of a folder
        self.unreadable = unreadable  # records whose header cannot be read (label -1)
        self.classes_named = classes_named  # False: names are just "0".."K-1" (no classes file)
        self.notes = []  # warnings found before the training log is open
        self._fd, self._fd_pid = None, None

    @property
    def num_classes(self):
        return len(self.classes)

    def __len__(self):
        return len(self.labels)

    def __repr__(self):
        return "DataSource(%s %s: %d images, %d classes)" % (self.kind, self.path, len(self),
                                                             self.num_classes)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_fd"], state["_fd_pid"] = None, None  # every process opens its own
        return state

    @classmethod
    def from_rec(cls, rec_path, idx_path=None, num_classes=None, classes_file=None,
                 max_bad_fraction=None):
        """A RecordIO file and its index. Classes come from `classes_file` (default
        PREFIX.classes.txt if present), else `num_classes`, else the largest label + 1; labels
        from the record headers (more unreadable than `max_bad_fraction`: an error)."""
        rec_path = os.path.expanduser(str(rec_path))
        prefix = os.path.splitext(rec_path)[0]
        idx_path = os.path.expanduser(str(idx_path)) if idx_path else prefix + ".idx"
        if not os.path.isfile(rec_path):
            raise UserError("RecordIO file %s does not exist" % rec_path)
        if not os.path.isfile(idx_path):
            raise UserError("index file %s does not exist; make it by packing the images with "
                            "`gluon-tricks pack SRC_DIR %s` (or with MXNet's tools/im2rec.py or "
                            "tools/rec2idx.py)" % (idx_path, prefix))
        try:
            _, offsets = recordio.read_index(idx_path)
        except recordio.CorruptRecord as error:
            raise UserError(str(error)) from None
        if len(offsets) == 0:
            raise UserError("index file %s lists no records" % idx_path)
        labels, ends = _scan_labels(rec_path, offsets)
        check_index_covers(rec_path, idx_path, offsets, ends)
        unreadable = int(np.sum(labels < 0))
        check_bad_fraction(unreadable, len(labels), max_bad_fraction, rec_path,
                           "records cannot be read (is the file truncated?)")
        notes = []
        if unreadable:
            notes.append("%s: %d of %d records are unreadable and will be skipped"
                         % (rec_path, unreadable, len(labels)))
        if classes_file is None and os.path.isfile(prefix + CLASSES_SUFFIX):
            classes_file = prefix + CLASSES_SUFFIX
        if classes_file is not None:
            classes = read_classes(classes_file)
        else:
            count = num_classes if num_classes is not None else int(labels.max()) + 1
            classes = [str(i) for i in range(max(count, 0))]
        if num_classes is not None and num_classes != len(classes):
            raise UserError("%s names %d classes, but %d were asked for"
                            % (classes_file, len(classes), num_classes))
        bad = labels >= len(classes)
        if bad.any():
            i = int(np.argmax(bad))
            raise UserError("%s: record %d has label %d, outside [0, %d) classes"
                            % (rec_path, i, labels[i], len(classes)))
        source = cls("rec", rec_path, offsets, labels, classes, unreadable=unreadable,
                     classes_named=classes_file is not None)
        for note in notes:
            source.note(note)
        return source

    @classmethod
    def from_folder(cls, root):
        """ROOT/CLASS/IMAGE files; other files and nested folders are counted in `ignored`."""
        root = os.path.expanduser(str(root))
        if not os.path.isdir(root):
            raise UserError("image folder %s does not exist" % root)
        classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        if not classes:
            raise UserError("image folder %s has no class folders (expected ROOT/CLASS/IMAGE.jpg)"
                            % root)
        entries, labels, ignored = [], [], 0
        for label, name in enumerate(classes):
            found = 0
            for filename in sorted(os.listdir(os.path.join(root, name))):
                relative = os.path.join(name, filename)
                if (os.path.splitext(filename)[1].lower() in images.IMAGE_EXTENSIONS
                        and os.path.isfile(os.path.join(root, relative))):
                    entries.append(relative)
                    labels.append(label)
                    found += 1
                else:
                    ignored += 1
            if found == 0:
                raise UserError("class folder %s has no images (%s)"
                                % (os.path.join(root, name), "/".join(images.IMAGE_EXTENSIONS)))
        source = cls("folder", root, entries, np.asarray(labels, np.int64), classes, ignored)
        if ignored:
            source.note("%s: ignored %d files that are not %s images"
                        % (root, ignored, "/".join(images.IMAGE_EXTENSIONS)))
        return source

    def note(self, message):
        """A warning about this data: logged now and kept in `notes` for the training log."""
        LOG.warning("%s", message)
        self.notes.append(message)

    def entry(self, i):
        """Image i's path relative to the root (folder) or its byte offset in the .rec."""
        return self._entries[i]

    def _file(self):
        if self._fd is None or self._fd_pid != os.getpid():
            self._fd, self._fd_pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def read(self, i):
        """(label, encoded image bytes) of image i; raises recordio.CorruptRecord if unreadable."""
        if self.kind == "folder":
            try:
                with open(os.path.join(self.path, self._entries[i]), "rb") as f:
                    return int(self.labels[i]), f.read()
            except OSError as error:
                raise recordio.CorruptRecord(str(error)) from None
        payload = recordio.read_record(self._file(), int(self._entries[i]))
        label, encoded = recordio.unpack_image_record(payload)
        if label != self.labels[i]:
            raise recordio.CorruptRecord("record %d changed since it was indexed" % i)
        return int(self.labels[i]), encoded

    def close(self):
        if self._fd is not None and self._fd_pid == os.getpid():
            os.close(self._fd)
        self._fd = None


def check_bad_fraction(bad, total, max_bad_fraction, path, what):
    """UserError when more than `max_bad_fraction` of `total` items are bad."""
    if max_bad_fraction is not None and total and bad > max_bad_fraction * total:
        raise UserError("%s: %d of %d %s: %.1f%%, more than --max-bad-fraction %g allows"
                        % (path, bad, total, what, 100.0 * bad / total, max_bad_fraction))


def check_same_classes(train, val):
    """Training and validation must name the same classes in the same order (unnamed: the same
    count, with a note); else one line naming the first difference."""
    if train.num_classes != val.num_classes:
        raise UserError("the training data (%s) has %d classes but the validation data (%s) has "
                        "%d" % (train.path, train.num_classes, val.path, val.num_classes))
    unnamed = [(what, source) for what, source in (("validation", val), ("training", train))
               if not source.classes_named]
    if unnamed:
        what, source = unnamed[0]
        val.note("the %s data %s has no class names (no %s beside it): only the class count (%d) "
                 "of training and validation could be compared, so validation label k is assumed "
                 "to be training's class k" % (what, source.path, os.path.basename(
                     os.path.splitext(source.path)[0] + CLASSES_SUFFIX), val.num_classes))
    if train.classes_named and val.classes_named and train.classes != val.classes:
        i = next(i for i, (a, b) in enumerate(zip(train.classes, val.classes)) if a != b)
        raise UserError("the training data (%s) and the validation data (%s) name different "
                        "classes: class %d is %r in training, %r in validation"
                        % (train.path, val.path, i, train.classes[i], val.classes[i]))


def check_trainable(train):
    """A classifier needs two classes or more."""
    if train.num_classes < 2:
        raise UserError("the training data %s has %d class%s (%s); classification needs 2 or "
                        "more classes" % (train.path, train.num_classes,
                                          "" if train.num_classes == 1 else "es",
                                          ", ".join(train.classes) or "none"))


def read_classes(path):
    """Class names, one a line (blank lines ignored)."""
    try:
        with open(path) as f:
            names = [line.strip() for line in f if line.strip()]
    except OSError as error:
        raise UserError("cannot read class names from %s: %s" % (path, error.strerror)) from None
    if not names:
        raise UserError("class file %s is empty" % path)
    return names


def _scan_labels(rec_path, offsets):
    """(labels, ends) of every record from its header; -1 where unreadable."""
    labels = np.empty(len(offsets), np.int64)
    ends = np.empty(len(offsets), np.int64)
    unreadable = 0
    fd = os.open(rec_path, os.O_RDONLY)
    try:
        for i, offset in enumerate(offsets.tolist()):
            try:
                value, ends[i] = recordio.read_label_and_end(fd, offset)
            except recordio.CorruptRecord:
                labels[i], ends[i], unreadable = -1, -1, unreadable + 1
                continue
            if not math.isfinite(value) or value != int(value) or value < 0:
                raise UserError("%s: record %d has label %r; labels must be class numbers 0, 1, ..."
                                % (rec_path, i, value))
            labels[i] = int(value)
    finally:
        os.close(fd)
    if unreadable == len(offsets):
        raise UserError("%s: no readable records (is it a RecordIO file?)" % rec_path)
    return labels, ends


def check_index_covers(rec_path, idx_path, offsets, ends):
    """The .idx must list every record of its .rec, back to back from byte 0 to the end: a cut
    index would train on a subset (of the classes, packs being sorted). Unreadable records (end
    -1) are left to the unreadable count."""
    order = np.argsort(offsets, kind="stable")
    starts, stops = offsets[order], ends[order]
    size = os.path.getsize(rec_path)

    def uncovered(what):
        return UserError("index file %s does not cover its RecordIO file %s: %s; remake the index "
                         "with `gluon-tricks pack` or MXNet's tools/rec2idx.py, or pass the index "
                         "made with this .rec" % (idx_path, rec_path, what))
    if starts[0] > 0:
        raise uncovered("bytes 0 to %d (before its first record) are listed by no line"
                        % starts[0])
    gaps = np.flatnonzero((stops[:-1] >= 0) & (stops[:-1] < starts[1:]))
    if len(gaps):
        i = int(gaps[0])
        raise uncovered("bytes %d to %d (after the record at byte %d) are listed by no line (%d "
                        "gaps)" % (stops[i], starts[i + 1], starts[i], len(gaps)))
    if 0 <= stops[-1] < size:
        raise uncovered("its %d records end at byte %d of %d (about %d more records are listed by "
                        "no line)" % (len(starts), stops[-1], size,
                                      round((size - stops[-1]) / (stops[-1] / len(starts)))))
