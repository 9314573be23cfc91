"""Environment set-up the training stage needs before transformers is used.

Offline by default (nothing is downloaded unless the user's environment says otherwise), and the
no-torchvision workaround: InternVL's and Qwen2(.5)/3-VL's processors declare a video processor
that transformers only defines when torchvision imports; without torchvision they cannot even be
constructed (docs/training.md#p1-no-torchvision). Dropping the video processor
from their sub-processor list makes them work for images; videos then need torchvision.
"""

from __future__ import annotations

import os
import warnings

from vlmdata.errors import VlmdataError

_PATCHED = False


def require_train_extra() -> None:
    """Import check with the install command in the message instead of an ImportError traceback."""
    missing = []
    for module in ("torch", "transformers", "peft", "accelerate"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise VlmdataError(f"the training stage needs {', '.join(missing)}: pip install 'vlmdata[train]'")


def setup_environment() -> None:
    """Offline defaults (overridable by the user's own environment) and the processor patch."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    require_train_extra()
    patch_processors_without_torchvision()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-file "Loading weights" bars; the Trainer keeps its own bar
    # peft still calls a transformers property renamed in v5; the warning says nothing to a user.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


def patch_processors_without_torchvision() -> bool:
    """Let image-only processors be built when torchvision is absent; True when patched."""
    global _PATCHED
    if _PATCHED:
        return True
    from transformers.utils import is_torchvision_available

    if is_torchvision_available():
        return False
    import transformers
    from transformers.processing_utils import ProcessorMixin

    base = ProcessorMixin.get_attributes.__func__  # type: ignore[attr-defined]

    def get_attributes(cls: type) -> list[str]:
        return [a for a in base(cls) if a != "video_processor"]

    for name in ("InternVLProcessor", "Qwen2VLProcessor", "Qwen2_5_VLProcessor", "Qwen3VLProcessor"):
        cls = getattr(transformers, name, None)
        if cls is not None:
            cls.get_attributes = classmethod(get_attributes)
    _PATCHED = True
    return True
