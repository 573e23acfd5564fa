"""The availability service."""
