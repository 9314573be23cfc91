"""COCO object detection "instances" JSON shapes (docs/frames.md#coco-xywh: boxes are ``x, y, w, h``).

An instances file (``instances_train2017.json``) is ONE JSON object::

    {"info": {...}, "licenses": [...],
     "images": [{"id": 1, "file_name": "000000000001.jpg", "width": 640, "height": 480, ...}],
     "annotations": [{"id": 7, "image_id": 1, "category_id": 18, "bbox": [x, y, w, h],
                      "iscrowd": 0, "area": 1035.5, "segmentation": [...]}],
     "categories": [{"id": 18, "name": "dog", "supercategory": "animal"}]}

``bbox`` is in pixels of the original image: ``x, y`` = top-left corner, ``w, h`` = width and
height. The COCO codec reads the file whole and hands one *image record* per entry of ``images``
to the decoder (``COCO_IMAGE_RECORD``): the image, its annotations and the categories they use.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictFloat, StrictInt, with_config
from typing_extensions import NotRequired, TypedDict

from vlmdata.schemas.common import OPEN, adapter

Id = int | str  # COCO writes integers; some converters write strings (kept as they are)
Size = Annotated[int, Field(gt=0)]
XYWH = Annotated[list[StrictInt | StrictFloat], Field(min_length=4, max_length=4)]

# keys of an image entry that COCO defines; any other key is carried in Sample.extra
IMAGE_KEYS = frozenset({"id", "file_name", "width", "height", "license", "coco_url", "flickr_url", "date_captured"})


@with_config(OPEN)
class CocoImage(TypedDict):
    id: Id
    file_name: str  # relative to the image folder (--root)
    width: Size
    height: Size
    license: NotRequired[Any]
    coco_url: NotRequired[str | None]
    flickr_url: NotRequired[str | None]
    date_captured: NotRequired[Any]


@with_config(OPEN)
class CocoAnnotation(TypedDict):
    id: NotRequired[Id]  # required by COCO; when absent the file order is the tie-break
    image_id: Id
    category_id: Id
    bbox: XYWH  # [x, y, w, h] in pixels of the original image
    iscrowd: NotRequired[Annotated[int, Field(ge=0, le=1)]]  # 1 = a crowd region (RLE mask)
    area: NotRequired[StrictInt | StrictFloat]
    segmentation: NotRequired[Any]  # not read (dropped when the file is loaded, to save memory)


@with_config(OPEN)
class CocoCategory(TypedDict):
    id: Id
    name: str
    supercategory: NotRequired[str | None]


@with_config(OPEN)
class CocoImageRecord(TypedDict):
    """What the codec's reader yields per image (not a COCO structure: COCO has no per-image record)."""

    id: Any  # the image id, for messages about a record whose image entry is broken
    image: CocoImage
    annotations: list[CocoAnnotation]  # the annotations whose image_id is this image's id
    categories: list[CocoCategory]  # the categories those annotations name, in file order
    unmatched_annotations: NotRequired[int]  # on images[0] only: annotations naming no image
    duplicate_of: NotRequired[int]  # index in images of an earlier entry with the same id


COCO_IMAGE_RECORD = adapter(CocoImageRecord)
COCO_CATEGORIES = adapter(list[CocoCategory])
