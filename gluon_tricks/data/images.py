"""Encoded image bytes -> BGR uint8 pixels: header sizes, corruption checks, DCT-scaled JPEG
decode; numpy/OpenCV only, so forked data workers never touch MXNet."""
import struct

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # as MXNet's ImageFolderDataset and im2rec
JPEG_REDUCED_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                      4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# A complete file ends with its end marker, give or take some trailing bytes some writers add.
_TAIL = 1024


def is_jpeg(buf):
    return buf[:2] == b"\xff\xd8"


def image_size(buf):
    """(width, height) read from a JPEG or PNG header without decoding; None if unknown."""
    if buf[:8] == PNG_SIGNATURE and len(buf) >= 24 and buf[12:16] == b"IHDR":
        width, height = struct.unpack(">II", buf[16:24])
        return (width, height) if width > 0 and height > 0 else None
    if not is_jpeg(buf):
        return None
    pos, end = 2, len(buf)
    while pos + 4 <= end:
        if buf[pos] != 0xFF:
            return None
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length field
            pos += 2
            continue
        (length,) = struct.unpack(">H", buf[pos + 2:pos + 4])
        if marker in _SOF_MARKERS:
            if pos + 9 > end:
                return None
            height, width = struct.unpack(">HH", buf[pos + 5:pos + 9])
            return (width, height) if width > 0 and height > 0 else None
        if marker == 0xDA or length < 2:  # scan data before any frame header: not a JPEG we know
            return None
        pos += 2 + length
    return None


def looks_complete(buf):
    """False for a JPEG or PNG cut short (libjpeg would silently pad it with grey)."""
    if is_jpeg(buf):
        return b"\xff\xd9" in buf[-_TAIL:]
    if buf[:8] == PNG_SIGNATURE:
        return b"IEND" in buf[-_TAIL:]
    return len(buf) > 0


# A JPEG above this (50 MB decoded) is decoded at a reduced DCT scale even where the full-size
# decode is asked for: a 20000 x 20000 photo would take 1.2 GB per decode.
HUGE_PIXELS = 1 << 24


def huge_reduction(width, height, crop_w, crop_h, out_w, out_h):
    """reduction_for(crop, out) for a JPEG above HUGE_PIXELS, else 1."""
    if width * height <= HUGE_PIXELS:
        return 1
    return reduction_for(crop_w, crop_h, out_w, out_h)


def reduction_for(crop_w, crop_h, out_w, out_h):
    """The largest JPEG DCT scale 1/r (r in 1, 2, 4, 8) that leaves the crop at least as large
    as the output, so the resize after it only shrinks."""
    for r in (8, 4, 2):
        if crop_w >= r * out_w and crop_h >= r * out_h:
            return r
    return 1


def decode(buf, reduce=1):
    """BGR uint8 (H, W, 3) pixels, JPEGs at 1/reduce of the size; None if corrupt. EXIF
    orientation is ignored, as MXNet's ImageRecordIter decoder does."""
    if not looks_complete(buf):
        return None
    flag = JPEG_REDUCED_FLAGS[reduce] if is_jpeg(buf) else cv2.IMREAD_COLOR
    try:
        img = cv2.imdecode(np.frombuffer(buf, np.uint8), flag | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error:
        return None
    if img is None or img.ndim != 3 or img.shape[2] != 3 or img.size == 0:
        return None
    return img
