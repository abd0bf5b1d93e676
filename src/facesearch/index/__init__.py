"""Vector indexes: derived from the catalog, rebuildable at any time."""
