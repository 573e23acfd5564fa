"""The gateway's routes, one module per section of API.md."""
