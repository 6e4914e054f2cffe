"""Model runners, scheduling and prompt templates."""
