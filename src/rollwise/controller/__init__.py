"""The control plane: reconcile loops, the data-plane supervisor, events and status."""
