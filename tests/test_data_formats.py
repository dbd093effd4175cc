"""Input formats: image folders, RecordIO read without MXNet, `pack` output read by MXNet's own
readers (ImageRecordDataset, ImageRecordIter), and the clear messages for bad input."""
import os
import struct

import cv2
import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.data import recordio, transforms as T
from gluon_tricks.data.pack import pack_folder
from gluon_tricks.data.sources import DataSource
from gluon_tricks.errors import UserError


def _write_rec(path, payloads, labels):
    writer = mx.recordio.MXIndexedRecordIO(str(path) + ".idx", str(path) + ".rec", "w")
    for i, (payload, label) in enumerate(zip(payloads, labels)):
        writer.write_idx(i, mx.recordio.pack(mx.recordio.IRHeader(0, label, i, 0), payload))
    writer.close()
    return str(path) + ".rec", str(path) + ".idx"


def _jpeg(value=128, size=(24, 20)):
    image = np.full((size[1], size[0], 3), value, np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def test_folder_labels_follow_sorted_class_names_and_skip_non_images(small_image_set):
    source = DataSource.from_folder(small_image_set["folder"])
    reference = mx.gluon.data.vision.ImageFolderDataset(small_image_set["folder"])
    assert source.classes == reference.synsets == ["ant", "bee", "cat"]
    assert len(source) == len(reference) == 36 and source.ignored == 1
    assert list(source.labels) == [label for _, label in reference.items]
    label, buf = source.read(13)
    assert label == 1 and buf == open(reference.items[13][0], "rb").read()


def test_pack_output_reads_back_in_mxnets_record_dataset(small_image_set):
    source = DataSource.from_folder(small_image_set["folder"])
    records = mx.gluon.data.vision.ImageRecordDataset(small_image_set["rec"])
    ours = DataSource.from_rec(small_image_set["rec"], small_image_set["idx"])
    assert len(records) == len(ours) == len(source)
    assert ours.classes == source.classes  # from PREFIX.classes.txt
    lst = [line.split("\t") for line in open(small_image_set["prefix"] + ".lst")]
    for i in range(len(source)):
        image, label = records[i]
        assert label == source.labels[i] == ours.labels[i] == float(lst[i][1])
        assert lst[i][2].strip() == source.entry(i)
        assert ours.read(i)[1] == source.read(i)[1]  # stored as they are (pass-through)
        expected = cv2.imdecode(np.frombuffer(source.read(i)[1], np.uint8), cv2.IMREAD_COLOR)
        assert np.array_equal(image.asnumpy(), expected[:, :, ::-1])


def test_pack_output_reads_in_image_record_iter_as_our_validation_pipeline(small_image_set):
    size = 32
    it = mx.io.ImageRecordIter(
        path_imgrec=small_image_set["rec"], path_imgidx=small_image_set["idx"], batch_size=12,
        data_shape=(3, size, size), resize=int(np.ceil(size / 0.875)), shuffle=False,
        mean_r=T.MEAN_RGB[0], mean_g=T.MEAN_RGB[1], mean_b=T.MEAN_RGB[2],
        std_r=T.STD_RGB[0], std_g=T.STD_RGB[1], std_b=T.STD_RGB[2], preprocess_threads=1)
    source = DataSource.from_rec(small_image_set["rec"])
    out = np.empty((3, size, size), np.float32)
    seen = 0
    for batch in it:
        for data, label in zip(batch.data[0].asnumpy(), batch.label[0].asnumpy()):
            assert label == source.labels[seen]
            assert T.val_sample(source.read(seen)[1], size, out)
            assert np.abs(data - out).mean() < 0.02  # same resize, crop and normalisation
            seen += 1
    assert seen == len(source)


def test_pack_resize_shrinks_the_shorter_side_and_reencodes(small_image_set, tmp_path):
    summary = pack_folder(small_image_set["folder"], str(tmp_path / "r"), resize=30, quality=90,
                          progress=False, workers=2)
    assert summary["written"] == 36 and summary["ignored"] == 1
    for image, _ in mx.gluon.data.vision.ImageRecordDataset(summary["rec"]):
        assert min(image.shape[:2]) == 30


def test_recordio_reader_joins_records_split_around_the_magic(tmp_path):
    magic = struct.pack("<I", recordio.MAGIC)
    payloads = [b"abcd" + magic + b"efgh" + magic + magic + b"ij", b"xyz", magic, b""]
    writer = mx.recordio.MXIndexedRecordIO(str(tmp_path / "m.idx"), str(tmp_path / "m.rec"), "w")
    for i, payload in enumerate(payloads):
        writer.write_idx(i, payload)
    writer.close()
    _, offsets = recordio.read_index(str(tmp_path / "m.idx"))
    fd = os.open(str(tmp_path / "m.rec"), os.O_RDONLY)
    try:
        assert [recordio.read_record(fd, int(o)) for o in offsets] == payloads
        with pytest.raises(recordio.CorruptRecord):
            recordio.read_record(fd, int(offsets[1]) + 4)
    finally:
        os.close(fd)


def test_missing_index_names_the_file_and_how_to_make_it(tmp_path):
    rec, idx = _write_rec(tmp_path / "a", [_jpeg()], [0])
    os.remove(idx)
    with pytest.raises(UserError) as error:
        DataSource.from_rec(rec)
    assert idx in str(error.value) and "gluon-tricks pack" in str(error.value)


@pytest.mark.parametrize("labels, classes", [([0, 1, 3], ["a", "b", "c"]), ([0, -1, 1], None),
                                             ([0, 1.5, 1], None)])
def test_labels_outside_the_classes_are_refused(tmp_path, labels, classes):
    rec, idx = _write_rec(tmp_path / "a", [_jpeg()] * 3, labels)
    if classes:
        (tmp_path / "a.classes.txt").write_text("\n".join(classes) + "\n")
    with pytest.raises(UserError, match="label"):
        DataSource.from_rec(rec, idx)


def test_num_classes_without_a_class_file(tmp_path):
    rec, idx = _write_rec(tmp_path / "a", [_jpeg()] * 3, [0, 4, 2])
    assert DataSource.from_rec(rec, idx).num_classes == 5
    assert DataSource.from_rec(rec, idx, num_classes=7).num_classes == 7
    with pytest.raises(UserError, match="outside"):
        DataSource.from_rec(rec, idx, num_classes=3)


def test_empty_class_folder_and_missing_folder_are_clear_errors(tmp_path):
    (tmp_path / "a").mkdir()
    cv2.imwrite(str(tmp_path / "a" / "x.jpg"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("no images here")
    with pytest.raises(UserError, match="b has no images"):
        DataSource.from_folder(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        DataSource.from_folder(tmp_path / "nowhere")


def test_pack_skips_undecodable_images_and_cli_reports_one_line(tmp_path, cli):
    src = tmp_path / "src"
    for name in ("a", "b"):
        (src / name).mkdir(parents=True)
        (src / name / "good.jpg").write_bytes(_jpeg())
    (src / "b" / "broken.jpg").write_bytes(_jpeg()[:60])
    status, out, err = cli("pack", src, tmp_path / "out", "--workers", "0")
    assert status == 0 and "packed 2 images of 2 classes" in out and "1 unreadable" in out
    assert len(DataSource.from_rec(str(tmp_path / "out.rec"))) == 2
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]  # temporaries removed
    status, out, err = cli("pack", tmp_path / "nowhere", tmp_path / "x")
    assert status == 2 and err.count("\n") == 1 and "does not exist" in err


def test_pack_creates_the_output_folder_as_the_readme_example_needs(small_image_set, tmp_path,
                                                                    cli):
    status, out, err = cli("pack", small_image_set["folder"], tmp_path / "rec" / "deep" / "train",
                           "--workers", "0")
    assert status == 0 and "packed 36 images of 3 classes" in out, err
    assert len(DataSource.from_rec(str(tmp_path / "rec" / "deep" / "train.rec"))) == 36
    (tmp_path / "file").write_text("not a folder")
    status, out, err = cli("pack", small_image_set["folder"], tmp_path / "file" / "train",
                           "--workers", "0")
    assert status == 2 and err.count("\n") == 1 and "cannot create the output folder" in err
    assert str(tmp_path / "file") in err
