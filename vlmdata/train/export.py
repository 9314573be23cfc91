"""``vlmdata export``: a run's final model as a standalone folder.

A LoRA run saves only its adapter; ``merge_lora`` loads the base model the run trained, merges the
adapter into its weights and saves model + processor so that ``AutoModelForImageTextToText`` and
``AutoProcessor`` load the folder without peft. A full fine-tune is saved as it is.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from vlmdata.errors import VlmdataError
from vlmdata.outputs import current_umask
from vlmdata.train.compat import setup_environment
from vlmdata.train.config import CONFIG_NAME, build_config, read_config_file
from vlmdata.train.runner import FINAL


def export(run: str, output: str, merge_lora: bool = False, checkpoint: str | None = None) -> str:
    """Write the model of ``run`` (its final model, or ``checkpoint``) into ``output``; returns it."""
    setup_environment()
    from transformers import AutoModelForImageTextToText, AutoProcessor

    source = checkpoint or os.path.join(run, FINAL)
    if not os.path.isdir(source):
        raise VlmdataError(f"{source}: no such folder; is {run} a finished vlmdata train run?")
    if os.path.abspath(output) in (os.path.abspath(run), os.path.abspath(source)):
        raise VlmdataError("the export folder must not be the run folder itself")
    processor_source = source if os.path.isfile(os.path.join(source, "processor_config.json")) else None
    is_adapter = os.path.isfile(os.path.join(source, "adapter_config.json"))
    if is_adapter:
        if not merge_lora:
            raise VlmdataError(f"{source} holds a LoRA adapter: pass --merge-lora to merge it into the base model")
        from peft import PeftModel

        config_path = os.path.join(run, CONFIG_NAME)
        base_path = build_config(read_config_file(config_path), config_path).model
        if not os.path.isdir(base_path):
            raise VlmdataError(f"the base model {base_path} named in {config_path} is not there any more")
        model = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(base_path), source)
        model = model.merge_and_unload()
        processor_source = processor_source or base_path
    else:
        model = AutoModelForImageTextToText.from_pretrained(source)
    if processor_source is None:
        raise VlmdataError(f"{source} has no processor files (processor_config.json)")
    processor = AutoProcessor.from_pretrained(processor_source)
    parent = os.path.dirname(os.path.abspath(output)) or "."
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)  # written whole, then renamed into place
    os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes it 0700: the export is for other users too
    try:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        if os.path.exists(output):
            if os.listdir(output):
                raise VlmdataError(f"{output} exists and is not empty; choose a new folder")
            os.rmdir(output)
        os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output
