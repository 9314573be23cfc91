"""vlmdata: vision-language fine-tuning data, converted and checked before training.

Public API::

    for sample in vlmdata.read("train.jsonl", root="images/"): ...
    vlmdata.write(samples, "out.jsonl", "internvl")
    report = vlmdata.convert("train.jsonl", "out.jsonl", to="internvl", root="images/")
"""

from vlmdata import convert
from vlmdata.convert.pipeline import read, write
from vlmdata.convert.registry import FORMATS
from vlmdata.convert.report import ConvertReport
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.schemas.sample import Box, Frame, MediaRef, Message, Sample

__all__ = [
    "FORMATS",
    "Box",
    "ConvertReport",
    "Frame",
    "MediaRef",
    "Message",
    "RecordError",
    "Sample",
    "VlmdataError",
    "convert",
    "read",
    "write",
]
__version__ = "0.1.0"
