"""The version pollama reports: the Ollama release whose API it follows."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("pollama")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0"
