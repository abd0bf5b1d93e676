"""Models run on ONNX Runtime: the session they share, and the adapters built on it."""
