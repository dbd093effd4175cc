"""Sort ImageNet's flat validation images (from ILSVRC2012_img_val.tar) into class folders.

    python3 scripts/lib/imagenet_val.py LABELS VAL_DIR [TRAIN_DIR]

LABELS is either the official devkit, ILSVRC2012_devkit_t12.tar.gz (data/meta.mat maps the
ILSVRC2012_IDs of data/ILSVRC2012_validation_ground_truth.txt to WordNet ids; reading it needs
scipy), or a text/CSV file naming, on each line, a validation image and its WordNet id, e.g.
`ILSVRC2012_val_00000001.JPEG n01751748` (Kaggle's LOC_val_solution.csv has this form too).
The images VAL_DIR/ILSVRC2012_val_*.JPEG move to VAL_DIR/<wnid>/. With TRAIN_DIR, every label
must be one of its class folders, so that train and val get the same class indices when packed.
Rerunning after an interruption moves the rest. A failure is one line on stderr and status 2.
"""
import io
import os
import re
import sys
import tarfile

VAL_NAME = re.compile(r"ILSVRC2012_val_\d{8}")
WNID = re.compile(r"\bn\d{8}\b")


class Fail(Exception):
    """A problem with the user's files, reported as one line."""


def labels_from_devkit(path):
    """{'ILSVRC2012_val_00000001': 'n01751748', ...} from the devkit archive."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise Fail("reading the devkit's meta.mat needs scipy (in the pinned stack of "
                   "scripts/install_env.sh; set PYTHON), or use a text label file") from None
    try:
        with tarfile.open(path) as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}

            def read(suffix):
                for name, member in members.items():
                    if name.endswith(suffix):
                        return tar.extractfile(member).read()
                raise Fail("%s holds no %s: is it ILSVRC2012_devkit_t12?" % (path, suffix))
            synsets = loadmat(io.BytesIO(read("data/meta.mat")), squeeze_me=True)["synsets"]
            truth = read("data/ILSVRC2012_validation_ground_truth.txt").decode().split()
    except (tarfile.TarError, OSError) as error:
        raise Fail("cannot read the devkit %s: %s" % (path, error)) from None
    wnid_of = {int(i): str(w) for i, w in zip(synsets["ILSVRC2012_ID"], synsets["WNID"])}
    try:
        return {"ILSVRC2012_val_%08d" % (n + 1): wnid_of[int(t)] for n, t in enumerate(truth)}
    except (KeyError, ValueError) as error:
        raise Fail("the devkit's ground truth has an id that meta.mat lacks: %s" % error) from None


def labels_from_text(path):
    """The same mapping from lines that name an image and a WordNet id (other lines skipped)."""
    labels = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            name = VAL_NAME.search(line)
            if not name:
                continue  # a header or a blank line
            wnid = WNID.search(line, name.end())
            if not wnid:
                raise Fail("%s:%d names %s but no WordNet id (nXXXXXXXX)"
                           % (path, number, name.group(0)))
            labels[name.group(0)] = wnid.group(0)
    if not labels:
        raise Fail("%s names no validation image (ILSVRC2012_val_XXXXXXXX)" % path)
    return labels


def read_labels(path):
    if not os.path.isfile(path):
        raise Fail("no such label file: %s" % path)
    return labels_from_devkit(path) if tarfile.is_tarfile(path) else labels_from_text(path)


def sort_images(labels, val_dir, train_dir=None):
    """Move every flat validation image into the folder of its class; returns (moved, classes)."""
    images = sorted(f for f in os.listdir(val_dir)
                    if VAL_NAME.match(f) and os.path.isfile(os.path.join(val_dir, f)))
    unlabelled = [f for f in images if VAL_NAME.match(f).group(0) not in labels]
    if unlabelled:
        raise Fail("no label for %d of %d images in %s (first: %s)"
                   % (len(unlabelled), len(images), val_dir, unlabelled[0]))
    wanted = {labels[VAL_NAME.match(f).group(0)] for f in images}
    if train_dir is not None:
        classes = {d for d in os.listdir(train_dir) if os.path.isdir(os.path.join(train_dir, d))}
        unknown = sorted(wanted - classes)
        if unknown:
            raise Fail("%d validation classes are not training classes in %s (first: %s)"
                       % (len(unknown), train_dir, unknown[0]))
    for wnid in wanted:
        os.makedirs(os.path.join(val_dir, wnid), exist_ok=True)
    for f in images:
        wnid = labels[VAL_NAME.match(f).group(0)]
        os.replace(os.path.join(val_dir, f), os.path.join(val_dir, wnid, f))
    return len(images), len({d for d in os.listdir(val_dir)
                             if os.path.isdir(os.path.join(val_dir, d))})


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        if not os.path.isdir(argv[1]):
            raise Fail("no such folder: %s" % argv[1])
        moved, classes = sort_images(read_labels(argv[0]), argv[1],
                                     argv[2] if len(argv) == 3 else None)
    except Fail as error:
        print("imagenet_val: error: %s" % error, file=sys.stderr)
        return 2
    print("imagenet_val: %d images moved; %s has %d class folders" % (moved, argv[1], classes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
