"""Rule modules; importing this package registers every rule.

Code families, one module per family (``common`` holds the helpers several of them share):

* VD0 reading: ``reading``
* VD1 records as the target reads them: VD10x media tags ``media_tags``, VD11x roles and turns
  ``roles``, VD12x ids and keys ``keys``
* VD2 grounding: ``grounding``
* VD3 media files: ``media``
* VD4 data files: VD40x layout ``layout``, VD41x InternVL meta ``meta``, VD42x line hygiene
  ``lines``, VD43x LLaMA-Factory dataset_info.json ``dataset_info``
* VD5 token budget: ``budget``
* VD6 image content (opt-in: decodes pixels): ``visual``
"""

from vlmdata.validators.rules import reading  # noqa: F401

from vlmdata.validators.rules import media_tags  # noqa: F401  # isort: skip
from vlmdata.validators.rules import roles  # noqa: F401  # isort: skip
from vlmdata.validators.rules import keys  # noqa: F401  # isort: skip
from vlmdata.validators.rules import grounding  # noqa: F401  # isort: skip
from vlmdata.validators.rules import media  # noqa: F401  # isort: skip
from vlmdata.validators.rules import layout  # noqa: F401  # isort: skip
from vlmdata.validators.rules import meta  # noqa: F401  # isort: skip
from vlmdata.validators.rules import lines  # noqa: F401  # isort: skip
from vlmdata.validators.rules import dataset_info  # noqa: F401  # isort: skip
from vlmdata.validators.rules import budget  # noqa: F401  # isort: skip
from vlmdata.validators.rules import visual  # noqa: F401  # isort: skip
