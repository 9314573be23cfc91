"""Dataset tools: meta files, transforms, filters, splits, stats and show."""
