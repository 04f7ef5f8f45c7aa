"""A2A-aware checks: agent cards (fetch, validate, diff), extensions and their registry."""
