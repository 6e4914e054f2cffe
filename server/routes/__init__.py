"""HTTP handlers, one module per group of routes; each handler stays thin."""
