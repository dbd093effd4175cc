"""Reading MXNet RecordIO (.rec + .idx) without MXNet, with positional reads safe across forks.
dmlc's format: a uint32 magic, a uint32 of 3 bits part flag (a payload is split where it holds the
magic) and 29 bits length, the bytes, padding to 4; an image payload starts with an IRHeader."""
import os
import struct

import numpy as np

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
IR_FORMAT = "<IfQQ"  # mx.recordio.IRHeader: flag, label, id, id2
IR_SIZE = struct.calcsize(IR_FORMAT)
_LENGTH_MASK = (1 << 29) - 1
MAX_PARTS = 1 << 16


class CorruptRecord(Exception):
    """A record whose framing or header cannot be read."""


def read_index(idx_path):
    """(keys, offsets) of an .idx file (`key<TAB>offset` per line), in file order, as int64."""
    keys, offsets = [], []
    with open(idx_path, "rb") as f:
        if f.read(4) == _MAGIC_BYTES:
            raise CorruptRecord("index file %s is not an index (lines of `key<TAB>offset`); is "
                                "it the .rec itself?" % idx_path)
        f.seek(0)
        for number, raw in enumerate(f, 1):
            line = raw.decode("ascii", "replace").strip()
            if not line:
                continue
            fields = line.split("\t")
            try:
                keys.append(int(fields[0]))
                offsets.append(int(fields[1]))
            except (ValueError, IndexError):
                raise CorruptRecord("%s line %d is not `key<TAB>offset`: %r"
                                    % (idx_path, number, line[:80])) from None
    return np.asarray(keys, np.int64), np.asarray(offsets, np.int64)


def _part_header(fd, offset):
    """(continuation flag, payload length) of the record part at `offset`."""
    head = os.pread(fd, 8, offset)
    if len(head) < 8:
        raise CorruptRecord("record at byte %d is past the end of the file" % offset)
    magic, lrec = struct.unpack("<II", head)
    if magic != MAGIC:
        raise CorruptRecord("no record starts at byte %d (bad magic)" % offset)
    return lrec >> 29, lrec & _LENGTH_MASK


def _read_part(fd, offset):
    """(continuation flag, data, offset of the next part) of the record part at `offset`."""
    flag, length = _part_header(fd, offset)
    data = os.pread(fd, length, offset + 8)
    if len(data) < length:
        raise CorruptRecord("record at byte %d is truncated" % offset)
    return flag, data, offset + 8 + ((length + 3) & ~3)


def read_record(fd, offset):
    """The payload of the record starting at `offset`, its parts joined back with the magic."""
    flag, data, offset = _read_part(fd, offset)
    if flag == 0:
        return data
    if flag != 1:
        raise CorruptRecord("record at byte %d starts mid-record" % offset)
    parts = [data]
    for _ in range(MAX_PARTS):
        flag, data, offset = _read_part(fd, offset)
        if flag not in (2, 3):
            raise CorruptRecord("record part at byte %d has flag %d" % (offset, flag))
        parts.append(data)
        if flag == 3:
            return _MAGIC_BYTES.join(parts)
    raise CorruptRecord("record with more than %d parts" % MAX_PARTS)


def read_label_and_end(fd, offset):
    """(label as a float, byte offset just past the record) of the image record at `offset`."""
    head = os.pread(fd, 8 + IR_SIZE, offset)
    if len(head) < 8 + IR_SIZE:
        raise CorruptRecord("record at byte %d is too short for an image header" % offset)
    magic, lrec = struct.unpack("<II", head[:8])
    if magic != MAGIC or (lrec >> 29) not in (0, 1) or (lrec & _LENGTH_MASK) < IR_SIZE:
        return unpack_image_record(read_record(fd, offset))[0], record_end(fd, offset)
    flag, label, _, _ = struct.unpack(IR_FORMAT, head[8:])
    if flag != 0:
        raise CorruptRecord("record at byte %d has %d labels; one class label per image is "
                            "expected" % (offset, flag))
    if lrec >> 29 == 0:
        return label, offset + 8 + (((lrec & _LENGTH_MASK) + 3) & ~3)
    return label, record_end(fd, offset)


def record_end(fd, offset):
    """The byte offset just past the record starting at `offset` (all its parts)."""
    for _ in range(MAX_PARTS + 1):
        flag, length = _part_header(fd, offset)
        offset += 8 + ((length + 3) & ~3)
        if flag in (0, 3):
            return offset
    raise CorruptRecord("record with more than %d parts" % MAX_PARTS)


def unpack_image_record(payload):
    """(label, encoded image bytes) of an image record's payload (mx.recordio.unpack's layout)."""
    if len(payload) < IR_SIZE:
        raise CorruptRecord("image record shorter than its header")
    flag, label, _, _ = struct.unpack(IR_FORMAT, payload[:IR_SIZE])
    if flag != 0:
        raise CorruptRecord("image record with %d labels; one class label per image is "
                            "expected" % flag)
    return label, payload[IR_SIZE:]
