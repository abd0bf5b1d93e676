"""Models run on ONNX Runtime: the session they share, RetinaFace, dlib's network converted,
operators' own models."""
