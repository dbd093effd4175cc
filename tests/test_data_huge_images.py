"""A huge JPEG (more than images.HUGE_PIXELS) is decoded at a reduced DCT scale on every path,
also where the exact full-size decode is asked for (the gluoncv flavour, fast_decode off): the
crop boxes are those of the full-size image, each still at least the output size after the
reduction (so the resize only shrinks), and the pixels stay close to the full-size decode's."""
import cv2
import numpy as np
import pytest

from gluon_tricks.data import images, sharding, transforms as T

WIDTH, HEIGHT = 4800, 3600  # 17.3 Mpx, just above HUGE_PIXELS (16.8 Mpx): 52 MB decoded


@pytest.fixture(scope="module")
def huge_jpeg():
    """A real 4800 x 3600 JPEG of smooth gradients and discs (made here, 0.6 MB)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    image = np.stack([x / WIDTH * 200, y / HEIGHT * 200, (x + y) / (WIDTH + HEIGHT) * 250],
                     axis=2).astype(np.uint8)
    rng = np.random.RandomState(0)
    for _ in range(40):
        centre = (int(rng.randint(0, WIDTH)), int(rng.randint(0, HEIGHT)))
        colour = tuple(int(c) for c in rng.randint(0, 256, 3))
        cv2.circle(image, centre, int(rng.randint(100, 600)), colour, -1)
    image = cv2.GaussianBlur(image, (0, 0), 8)
    buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    assert images.image_size(buf) == (WIDTH, HEIGHT) and WIDTH * HEIGHT > images.HUGE_PIXELS
    return buf


@pytest.fixture
def decodes(monkeypatch):
    """The (reduce, decoded shape) of every decode."""
    seen, real = [], images.decode

    def spy(buf, reduce=1):
        image = real(buf, reduce)
        seen.append((reduce, None if image is None else image.shape))
        return image
    monkeypatch.setattr(images, "decode", spy)
    return seen


def _boxes(flavour, size, count):
    """The crop boxes train_sample draws for images 0..count-1 of a WIDTH x HEIGHT image."""
    boxes = []
    for i in range(count):
        rng = sharding.sample_rng(1, 0, i)
        rng.random()
        T.sample_colour(rng, flavour)
        boxes.append(T.sample_flavour_crop(rng, WIDTH, HEIGHT, flavour))
    return boxes


@pytest.mark.parametrize("flavour, size", [("gluoncv", 224), ("gluoncv", 32), ("paper", 224)])
def test_a_huge_jpeg_is_decoded_reduced_with_the_crop_still_larger_than_the_output(
        huge_jpeg, decodes, monkeypatch, flavour, size):
    count = 6
    reduced = []
    for i in range(count):
        out = np.empty((3, size, size), np.float32)
        assert T.train_sample(huge_jpeg, sharding.sample_rng(1, 0, i), size, flavour, out,
                              fast_decode=False)
        reduced.append(T.train_pixels(huge_jpeg, sharding.sample_rng(1, 0, i), size, flavour,
                                      fast_decode=False))
    assert len(decodes) == 2 * count
    for (reduce, shape), box in zip(decodes[::2], _boxes(flavour, size, count)):
        # the rule: the largest 1/r (r <= 8) with the crop box still >= size x size at 1/r
        assert reduce == images.reduction_for(box[2], box[3], size, size) > 1
        assert box[2] >= reduce * size and box[3] >= reduce * size
        assert shape[:2] == (-(-HEIGHT // reduce), -(-WIDTH // reduce))
    # the full-size decode (the old path) gives the same draws and nearly the same pixels
    monkeypatch.setattr(images, "HUGE_PIXELS", 1 << 40)
    for i, (pixels, steps, alpha) in enumerate(reduced):
        exact, exact_steps, exact_alpha = T.train_pixels(
            huge_jpeg, sharding.sample_rng(1, 0, i), size, flavour, fast_decode=False)
        assert steps == exact_steps and np.array_equal(alpha, exact_alpha)
        difference = np.abs(pixels.astype(np.float32) - exact)
        assert difference.mean() < 2.0, difference.mean()  # grey levels of 255
    assert decodes[-1][0] == 1 and decodes[-1][1][:2] == (HEIGHT, WIDTH)


def test_a_huge_jpeg_in_validation_is_decoded_reduced_also_without_fast_decode(huge_jpeg,
                                                                                 decodes):
    out = np.empty((3, 224, 224), np.float32)
    assert T.val_sample(huge_jpeg, 224, out, fast_decode=False)
    resized = T.val_resize_shape(WIDTH, HEIGHT, 224)  # (341, 256)
    assert decodes[0][0] == 8 and decodes[0][1][:2] == (450, 600)
    assert 600 >= resized[0] and 450 >= resized[1]  # still shrunk by the resize after it


def test_images_below_the_threshold_keep_the_exact_full_size_decode(decodes):
    image = np.full((2000, 3000, 3), 120, np.uint8)  # 6 Mpx: far larger than 224, not huge
    buf = cv2.imencode(".jpg", image)[1].tobytes()
    out = np.empty((3, 224, 224), np.float32)
    assert T.train_sample(buf, sharding.sample_rng(1, 0, 0), 224, "gluoncv", out)
    assert T.val_sample(buf, 224, out, fast_decode=False)
    assert [reduce for reduce, _ in decodes] == [1, 1]
