"""The local index: exact and approximate files beside the catalog (or memory only)."""
