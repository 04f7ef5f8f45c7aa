"""Where revisions run: local processes (``local.py``), or Deployments on a Kubernetes
cluster (``kubernetes.py``, applying the objects ``rollwise.kubernetes`` builds from a spec).
"""
