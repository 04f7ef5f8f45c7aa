"""Where revisions run: local processes (and Kubernetes, later)."""
