"""Ingest: turn folders and manifests into catalog rows and index entries."""
