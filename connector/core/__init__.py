"""The core: HTTP, pagination, manifests and state. It knows nothing of CLIs or platforms."""
