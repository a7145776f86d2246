"""The web service: the REST API under /api/v1, the print-shop portal's pages, sign-in, /healthz."""
