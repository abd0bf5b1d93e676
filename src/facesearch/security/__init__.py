"""Storage encryption: how templates are kept at rest, decided once, outside the stores."""
