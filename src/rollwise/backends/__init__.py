"""Where revisions run: local processes (``local.py``), or Deployments on a Kubernetes
cluster (``kubernetes.py``, applying the objects ``rollwise.kubernetes`` builds from a spec;
``kubernetes_reach.py``, how the controller reaches such an app's pods over HTTP).
"""
