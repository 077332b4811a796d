"""The tracks and learning read models."""
