"""The gateway's routes, one module per section of docs/http-contract.md."""
