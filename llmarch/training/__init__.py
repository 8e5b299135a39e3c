"""Training objectives, data and a small trainer."""
