"""vlmdata: vision-language fine-tuning data, converted and checked before training.

Public API::

    for sample in vlmdata.read("train.jsonl", root="images/"): ...
    vlmdata.write(samples, "out.jsonl", "internvl")
    report = vlmdata.convert("train.jsonl", "out.jsonl", to="internvl", root="images/")
    report = vlmdata.validate("out.jsonl", target="internvl")   # report.findings, report.to_dict()
"""

from vlmdata import convert
from vlmdata.convert.pipeline import read, write
from vlmdata.convert.registry import FORMATS
from vlmdata.convert.report import ConvertReport
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.schemas.sample import Box, Frame, MediaRef, Message, Sample
from vlmdata.validators.engine import ValidationReport, validate
from vlmdata.validators.registry import Finding

__all__ = [
    "FORMATS",
    "Box",
    "ConvertReport",
    "Finding",
    "Frame",
    "MediaRef",
    "Message",
    "RecordError",
    "Sample",
    "ValidationReport",
    "VlmdataError",
    "convert",
    "read",
    "validate",
    "write",
]
__version__ = "0.1.0"
