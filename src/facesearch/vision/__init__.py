"""Face detection, alignment and embedding."""
