"""The bundled training stage (extra ``train``: torch, transformers, peft, accelerate).

``vlmdata train`` reads any supported format, validates it, renders each sample through the
model's processor and chat template with grounding in the model's syntax and frame, masks the loss
to assistant tokens and trains with transformers' ``Trainer``. Importing this package does not
import torch; the commands do when they run.
"""
