"""Bad data sets end in one line before training: validation classes that differ from training's,
a one-class set, a truncated .rec or too many corrupt images (--max-bad-fraction)."""
import os
import shutil

import cv2
import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.data.loader import TrainLoader
from gluon_tricks.data.sources import DataSource
from gluon_tricks.errors import UserError

TINY = ["--model", "resnet18_v1d", "--input-size", "32", "--batch-size", "4", "-j", "0",
        "--num-epochs", "1"]


def _folder(root, classes, per_class=4):
    for k, name in enumerate(classes):
        os.makedirs(os.path.join(root, name))
        for i in range(per_class):
            image = np.full((36, 36, 3), 30 * k + 5 * i, np.uint8)
            cv2.imwrite(os.path.join(root, name, "%d.jpg" % i), image)
    return root


def test_validation_classes_other_than_trainings_are_refused_in_one_line(cli, tmp_path):
    train = _folder(str(tmp_path / "train"), ["ant", "bee", "cat"])
    val = _folder(str(tmp_path / "val"), ["ant", "bee", "dog"])  # same count, other names
    status, out, err = cli("train", *TINY, "--train-dir", train, "--val-dir", val,
                           "--save-dir", tmp_path / "out", "--logging-file", tmp_path / "log")
    assert status == 2 and err.count("\n") == 1
    assert "class 2 is 'cat' in training, 'dog' in validation" in err
    assert not os.path.exists(tmp_path / "log")  # refused before anything was written


def test_the_names_of_a_packed_set_are_compared_too(tmp_path):
    from gluon_tricks.data.pack import pack_folder
    from gluon_tricks.data.sources import check_same_classes
    pack_folder(_folder(str(tmp_path / "a"), ["x", "y"]), str(tmp_path / "a"), progress=False)
    pack_folder(_folder(str(tmp_path / "b"), ["x", "z"]), str(tmp_path / "b"), progress=False)
    packed = DataSource.from_rec(str(tmp_path / "a.rec"))
    with pytest.raises(UserError, match="class 1 is 'y' in training, 'z' in validation"):
        check_same_classes(packed, DataSource.from_rec(str(tmp_path / "b.rec")))
    check_same_classes(packed, DataSource.from_folder(str(tmp_path / "a")))
    os.remove(str(tmp_path / "b.classes.txt"))  # unnamed classes: only the count is known
    check_same_classes(packed, DataSource.from_rec(str(tmp_path / "b.rec")))


def test_a_one_class_data_set_says_two_classes_are_needed(cli, tmp_path):
    train = _folder(str(tmp_path / "train"), ["only"])
    val = _folder(str(tmp_path / "val"), ["only"])
    status, out, err = cli("train", *TINY, "--train-dir", train, "--val-dir", val,
                           "--save-dir", tmp_path / "out", "--logging-file", tmp_path / "log")
    assert status == 2 and err.count("\n") == 1
    assert "has 1 class (only); classification needs 2 or more classes" in err


@pytest.fixture
def truncated_rec(small_image_set, tmp_path):
    """The small set's .rec cut to half its length (the .idx still lists every record)."""
    for ext in (".rec", ".idx", ".classes.txt"):
        shutil.copy(small_image_set["prefix"] + ext, str(tmp_path / ("half" + ext)))
    rec = str(tmp_path / "half.rec")
    os.truncate(rec, os.path.getsize(rec) // 2)
    return rec


def test_a_rec_truncated_to_half_stops_above_the_bad_fraction(truncated_rec, caplog):
    with pytest.raises(UserError, match=r"half.rec: 1\d of 36 records cannot be read \(is the "
                                        r"file truncated\?\): \d\d\.\d%, more than "
                                        r"--max-bad-fraction 0.01 allows"):
        DataSource.from_rec(truncated_rec, max_bad_fraction=0.01)
    source = DataSource.from_rec(truncated_rec, max_bad_fraction=0.6)  # allowed: a warning
    assert 10 <= source.unreadable <= 20 and "records are unreadable" in caplog.text


def test_too_many_corrupt_images_stop_the_epoch(tmp_path):
    writer = mx.recordio.MXIndexedRecordIO(str(tmp_path / "c.idx"), str(tmp_path / "c.rec"), "w")
    for i in range(20):
        buf = cv2.imencode(".jpg", np.full((24, 32, 3), 10 * i, np.uint8))[1].tobytes()
        buf = b"\x00" * 50 if i % 5 == 0 else buf  # 4 of 20 do not decode
        writer.write_idx(i, mx.recordio.pack(mx.recordio.IRHeader(0, i % 2, i, 0), buf))
    writer.close()
    source = DataSource.from_rec(str(tmp_path / "c.rec"))
    with pytest.raises(UserError, match=r"c.rec: \d of 20 images of epoch 0 are corrupt or "
                                        r"unreadable: .*--max-bad-fraction 0.05"):
        list(TrainLoader(source, 4, 16, num_workers=0, max_bad_fraction=0.05).epoch(0))
    assert len(list(TrainLoader(source, 4, 16, num_workers=0, max_bad_fraction=0.5).epoch(0))) == 5


def test_a_pack_worker_that_dies_stops_pack_with_the_cause_instead_of_hanging(
        small_image_set, tmp_path, monkeypatch):
    import signal
    import time
    from gluon_tricks.data import pack
    real = pack.encode_image

    def dying(path, *args):
        if path.endswith(os.path.join("bee", "03.jpg")):
            os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer does
        return real(path, *args)
    monkeypatch.setattr(pack, "encode_image", dying)
    tic = time.time()
    with pytest.raises(UserError, match=r"pack: worker process \d+ died \(killed by signal 9\) "
                                        r"and its images were lost"):
        pack.pack_folder(small_image_set["folder"], str(tmp_path / "out"), workers=2,
                         progress=False)
    assert time.time() - tic < 60
    assert os.listdir(tmp_path) == []  # no partial set, no temporary file


def _copy_set(small_image_set, folder, name, index_lines=None):
    """The small set copied as folder/name.*, its .idx cut to the lines `index_lines` picks."""
    for ext in (".rec", ".idx", ".classes.txt"):
        shutil.copy(small_image_set["prefix"] + ext, str(folder / (name + ext)))
    if index_lines is not None:
        idx = folder / (name + ".idx")
        lines = idx.read_text().splitlines(True)
        idx.write_text("".join(index_lines(lines)))
    return str(folder / (name + ".rec")), str(folder / (name + ".idx"))


def test_an_index_cut_short_is_refused_naming_both_files(small_image_set, tmp_path, cli):
    rec, idx = _copy_set(small_image_set, tmp_path, "short", lambda lines: lines[:10])
    with pytest.raises(UserError, match=r"index file .*short.idx does not cover its RecordIO file "
                                        r".*short.rec: its 10 records end at byte \d+ of \d+ "
                                        r"\(about 2\d more records"):  # 26, estimated
        DataSource.from_rec(rec)
    status, out, err = cli("train", *TINY, "--rec-train", rec, "--rec-val",
                           small_image_set["rec"], "--save-dir", tmp_path / "out",
                           "--logging-file", tmp_path / "log")
    assert status == 2 and err.count("\n") == 1 and "does not cover" in err and idx in err
    assert not os.path.exists(tmp_path / "log")


def test_an_index_missing_lines_in_the_middle_or_the_first_is_refused(small_image_set, tmp_path):
    rec, _ = _copy_set(small_image_set, tmp_path, "holes", lambda lines: lines[:5] + lines[7:])
    with pytest.raises(UserError, match=r"holes.idx does not cover .*holes.rec: bytes \d+ to \d+ "
                                        r"\(after the record at byte \d+\) are listed by no line "
                                        r"\(1 gaps\)"):
        DataSource.from_rec(rec)
    rec, _ = _copy_set(small_image_set, tmp_path, "head", lambda lines: lines[1:])
    with pytest.raises(UserError, match=r"head.idx does not cover .*head.rec: bytes 0 to \d+ "
                                        r"\(before its first record\)"):
        DataSource.from_rec(rec)
    # the same lines in another order cover the file: accepted
    rec, _ = _copy_set(small_image_set, tmp_path, "shuffled", lambda lines: lines[::-1])
    assert len(DataSource.from_rec(rec)) == small_image_set["count"]


def test_a_validation_rec_without_class_names_is_a_note_for_the_log(small_image_set, tmp_path):
    from gluon_tricks.data.sources import check_same_classes
    rec, _ = _copy_set(small_image_set, tmp_path, "val")
    os.remove(str(tmp_path / "val.classes.txt"))
    train = DataSource.from_folder(small_image_set["folder"])
    val = DataSource.from_rec(rec)
    check_same_classes(train, val)
    assert len(val.notes) == 1
    assert ("the validation data %s has no class names (no val.classes.txt beside it): only the "
            "class count (3)" % rec) in val.notes[0]
    named = DataSource.from_rec(small_image_set["rec"])
    check_same_classes(train, named)
    assert named.notes == []


def test_an_index_flag_naming_the_rec_itself_is_one_line(small_image_set, tmp_path, cli):
    rec = small_image_set["rec"]
    with pytest.raises(UserError, match=r"index file .*small.rec is not an index \(lines of "
                                        r"`key<TAB>offset`\); is it the .rec itself\?"):
        DataSource.from_rec(rec, rec)
    status, out, err = cli("train", *TINY, "--rec-train", rec, "--rec-train-idx", rec,
                           "--rec-val", rec, "--save-dir", tmp_path / "out",
                           "--logging-file", tmp_path / "log")
    assert status == 2 and err.count("\n") == 1 and "is not an index" in err
