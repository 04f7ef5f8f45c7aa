"""rollwise on Kubernetes: an app's objects built from its spec (``objects``), the
controller's own (``install``), and their validation against the cluster's schemas
(``validation``). ``rollwise render`` writes them."""
