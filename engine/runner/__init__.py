"""The runner process: one loaded model, its KV slots and the continuous-batching step loop."""
