"""The HTTP service: command intake and reads for upstream systems in any language.

See docs/http.md. `create_app(settings)` (orderq/http/app.py) builds the ASGI app;
`orderq serve` runs it on Granian. Importing this package imports no web framework.
"""
