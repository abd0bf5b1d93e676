"""The catalog: the source of truth for sources, images, provenance, faces and embeddings."""
