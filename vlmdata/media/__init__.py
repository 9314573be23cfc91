"""Media references: path resolution under a root, and header-only image probing."""
