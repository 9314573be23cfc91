"""Codecs (one module per format), grounding syntaxes, box frames, streaming I/O, registry."""
