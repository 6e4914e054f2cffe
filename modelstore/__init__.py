"""Ollama-compatible content-addressed model store."""
