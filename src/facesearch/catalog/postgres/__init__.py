"""The catalog's stores on a PostgreSQL server (``postgresql://`` catalog URLs)."""
