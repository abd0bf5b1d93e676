"""Data protection: sources and lawful basis, retention, erasure, objection, access, audit."""
