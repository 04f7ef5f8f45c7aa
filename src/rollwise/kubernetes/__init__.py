"""rollwise on Kubernetes: an app's objects built from its spec (``objects``), the
controller's own (``install``), their validation against the cluster's schemas
(``validation``), and the parts that talk to a cluster: the API client (``connection``), a
list-and-watch (``watch``), leader election on a Lease (``lease``, ``leadership``); the
labels and names they share (``names``). ``rollwise render`` writes the objects; the
Kubernetes backend (``backends/kubernetes.py``) and router (``routing/gateway.py``) apply
them."""
