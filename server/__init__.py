"""HTTP API, wire contract and CLI of pollama."""
