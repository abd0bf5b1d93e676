"""Models run by ONNX Runtime: the session, dlib's network converted, operators' own models."""
