"""Where revisions run: local processes (``local.py``). A Kubernetes backend will be a module
beside it, applying the cluster objects that ``rollwise.kubernetes`` builds from a spec (and
``rollwise render`` writes today)."""
