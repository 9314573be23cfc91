"""Built-in chat templates with ``{% generation %}`` blocks, one per family.

The released checkpoints' templates render the right text but carry no ``{% generation %}``
block, and without one ``return_assistant_tokens_mask`` silently returns all zeros
(docs/training.md#p6-assistant-mask). These templates render the same text as
the families' own templates (ChatML for InternVL and Qwen, ``USER: .. ASSISTANT: ..`` for
LLaVA-1.5) and mark each assistant reply plus its end-of-turn token as the generation span.
An image content item becomes the placeholder the family's *processor* expands.
"""

from __future__ import annotations

QWEN_DEFAULT_SYSTEM = "You are a helpful assistant."  # Qwen2-VL / Qwen2.5-VL chat templates

_CONTENT = (
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for c in message['content'] -%}"
    "{%- if c['type'] == 'image' -%}{{- IMAGE -}}"
    "{%- elif c['type'] == 'text' -%}{{- c['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
)


def _content(image_placeholder: str) -> str:
    return _CONTENT.replace("IMAGE", repr(image_placeholder))


def chatml(image_placeholder: str, default_system: str | None) -> str:
    """ChatML: ``<|im_start|>role\\n...<|im_end|>\\n``; supervised span = reply + ``<|im_end|>``."""
    system = ""
    if default_system:
        system = (
            "{%- if messages[0]['role'] != 'system' -%}"
            "{{- '<|im_start|>system\\n' + " + repr(default_system) + " + '<|im_end|>\\n' -}}"
            "{%- endif -%}"
        )
    return (
        system + "{%- for message in messages -%}"
        "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
        "{%- if message['role'] == 'assistant' -%}"
        "{%- generation -%}" + _content(image_placeholder) + "{{- '<|im_end|>' -}}{%- endgeneration -%}"
        "{{- '\\n' -}}"
        "{%- else -%}" + _content(image_placeholder) + "{{- '<|im_end|>\\n' -}}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
    )


def llava() -> str:
    """LLaVA-1.5's ``conv_vicuna_v1`` turns: ``USER: <image>\\n.. ASSISTANT: ..</s>USER: ..``.

    The llava-hf checkpoints' own template has a generation block but no ``</s>`` (a model trained
    with it never learns to stop) and moves every image to the front of its turn; this one keeps
    the original training layout and supervises ``</s>``.
    """
    return (
        "{{- bos_token -}}"
        "{%- for message in messages -%}"
        "{%- if message['role'] == 'system' -%}" + _content("") + "{{- ' ' -}}"
        "{%- elif message['role'] == 'user' -%}{{- 'USER: ' -}}" + _content("<image>\n") + "{{- ' ' -}}"
        "{%- elif message['role'] == 'assistant' -%}{{- 'ASSISTANT: ' -}}"
        "{%- generation -%}" + _content("") + "{{- eos_token -}}{%- endgeneration -%}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{- 'ASSISTANT:' -}}{%- endif -%}"
    )
