"""The controller's admin API."""
