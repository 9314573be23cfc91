"""Rules with stable codes over records, media and files (`vlmdata validate`)."""

from vlmdata.validators.engine import ValidationReport, validate
from vlmdata.validators.registry import RULES, Finding, Rule

__all__ = ["RULES", "Finding", "Rule", "ValidationReport", "validate"]
