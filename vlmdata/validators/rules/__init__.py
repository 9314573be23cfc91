"""Rule modules; importing this package registers every rule.

Code families: VD0 reading, VD1 media tags and roles, VD2 grounding, VD3 media files,
VD4 data files and meta, VD5 token budget, VD6 image content (opt-in: decodes pixels).
"""

from vlmdata.validators.rules import reading  # noqa: F401

from vlmdata.validators.rules import records  # noqa: F401  # isort: skip
from vlmdata.validators.rules import grounding  # noqa: F401  # isort: skip
from vlmdata.validators.rules import media  # noqa: F401  # isort: skip
from vlmdata.validators.rules import files  # noqa: F401  # isort: skip
from vlmdata.validators.rules import budget  # noqa: F401  # isort: skip
from vlmdata.validators.rules import visual  # noqa: F401  # isort: skip
