"""The HTTP gateway: the public API, iCal feeds, web pages and OpenAPI docs."""
