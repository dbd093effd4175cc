"""The Pascal VOC detection layout (VOCdevkit/VOC2007/{JPEGImages,Annotations,ImageSets/Main}):
writing an annotation, reading the set with GluonCV's VOCDetection, and checking a set first.

GluonCV's reader drops a box outside its image with a logged warning and skips unknown class
names; `validate_voc` refuses both, and every other defect, with one line naming the file.
"""
import os
import xml.etree.ElementTree as ET

from gluon_tricks.errors import UserError

ANNOTATIONS, IMAGES, IMAGE_SETS = "Annotations", "JPEGImages", os.path.join("ImageSets", "Main")


def year_folder(root, year):
    """VOC<year> under `root`, the VOCdevkit folder (GluonCV's VOCDetection `root`)."""
    return os.path.join(root, "VOC%s" % year)


def annotation_xml(filename, width, height, objects):
    """A VOC annotation as bytes. objects: (class name, (xmin, ymin, xmax, ymax)) with VOC's
    1-based inclusive pixel coordinates."""
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for tag, value in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(int(value))
    for name, box in objects:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "difficult").text = "0"
        bndbox = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box):
            ET.SubElement(bndbox, tag).text = str(int(value))
    return ET.tostring(root, encoding="utf-8")


def gluoncv_dataset(root, splits, classes, **kwargs):
    """GluonCV's VOCDetection over `root` with our class names instead of VOC's twenty."""
    from gluoncv.data import VOCDetection
    dataset_class = type("VOCDetection", (VOCDetection,), {"CLASSES": tuple(classes)})
    return dataset_class(root=root, splits=splits, **kwargs)


def _number(obj, tag, path):
    node = obj.find(tag)
    try:
        return float(node.text)
    except (AttributeError, TypeError, ValueError):
        raise UserError("malformed annotation %s: <%s> is missing or not a number" %
                        (path, tag)) from None


def read_annotation(path, classes=None):
    """(width, height, [(name, (xmin, ymin, xmax, ymax))]) of one annotation file, checked:
    well-formed XML with a size, known class names (when `classes` is given), every box inside
    its image by GluonCV's rule (0 <= xmin - 1 < xmax - 1 <= width)."""
    if not os.path.isfile(path):
        raise UserError("missing annotation %s" % path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        raise UserError("malformed annotation %s: %s" % (path, error)) from None
    size = root.find("size")
    if size is None:
        raise UserError("malformed annotation %s: no <size>" % path)
    width, height = _number(size, "width", path), _number(size, "height", path)
    objects = []
    for index, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip().lower()
        if not name:
            raise UserError("malformed annotation %s: object %d has no <name>" % (path, index))
        if classes is not None and name not in classes:
            raise UserError("annotation %s: unknown class %r (known: %s)" %
                            (path, name, ", ".join(classes)))
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise UserError("malformed annotation %s: object %d has no <bndbox>" % (path, index))
        box = tuple(_number(bndbox, tag, path) for tag in ("xmin", "ymin", "xmax", "ymax"))
        xmin, ymin, xmax, ymax = (v - 1 for v in box)
        if not (0 <= xmin < xmax <= width and 0 <= ymin < ymax <= height):
            raise UserError("annotation %s: box %s of object %d (%s) lies outside its %dx%d "
                            "image" % (path, "(%g, %g, %g, %g)" % box, index, name, width,
                                       height))
        objects.append((name, box))
    return width, height, objects


def validate_voc(root, splits, classes=None):
    """Check a VOC-layout set under `root` (the VOCdevkit folder) before training: every image
    set exists and lists images, every listed image has its JPEG and a valid annotation
    (read_annotation). Returns
    {(year, name): (images, objects)}; raises UserError naming the first defect."""
    counts = {}
    for year, name in splits:
        folder = year_folder(root, year)
        listing = os.path.join(folder, IMAGE_SETS, name + ".txt")
        try:
            with open(listing) as f:
                ids = [line.strip() for line in f if line.strip()]
        except OSError:
            raise UserError("no image set %s (expected VOC%s/ImageSets/Main/%s.txt under the "
                            "VOCdevkit folder %s)" % (listing, year, name, root)) from None
        if not ids:
            raise UserError("image set %s lists no images" % listing)
        objects = 0
        for image_id in ids:
            image = os.path.join(folder, IMAGES, image_id + ".jpg")
            if not os.path.isfile(image):
                raise UserError("missing image %s (listed in %s)" % (image, listing))
            objects += len(read_annotation(os.path.join(folder, ANNOTATIONS, image_id + ".xml"),
                                           classes)[2])
        counts[(year, name)] = (len(ids), objects)
    return counts
