"""Rule modules; importing this package registers every rule.

Code families: VD0 reading, VD1 media tags and roles, VD2 grounding, VD3 media files,
VD4 data files and meta, VD5 token budget.
"""

from vlmdata.validators.rules import reading  # noqa: F401

# anchor: records (VD1)
# anchor: grounding (VD2)
# anchor: media (VD3)
# anchor: files (VD4)
# anchor: budget (VD5)
