"""OCI distribution client for pulling and pushing models."""
