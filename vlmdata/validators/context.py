"""Settings and shared state of one validation run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vlmdata.consumers import TARGETS as TARGETS
from vlmdata.media.inspect import MediaInspector
from vlmdata.media.paths import PathResolver


@dataclass
class ValidationContext:
    target: str  # the consumer whose rules apply (see TARGETS)
    model: str | None = None  # token-budget model (see vlmdata.media.tokens.BUDGET_MODELS)
    max_length: int | None = None
    tokenizer: str | None = None  # a tokenizer directory for exact text token counts
    max_dynamic_patch: int = 12  # InternVL tiles per image (a meta entry may override it)
    min_pixels: int | None = None
    max_pixels: int | None = None
    resolver: PathResolver | None = None
    inspector: MediaInspector = field(default_factory=MediaInspector)
    file_state: dict[str, Any] = field(default_factory=dict)  # per-file scratch space for rules
    hasher: Any = None  # the VD6 rules' ImageHasher, made when first needed and closed with the run

    def close(self) -> None:
        """Close the run's caches (the probe cache, and the visual-hash cache when VD6 used it)."""
        self.inspector.close()
        if self.hasher is not None:
            self.hasher.close()
            self.hasher = None

    def new_file(self) -> None:
        self.file_state = {}
