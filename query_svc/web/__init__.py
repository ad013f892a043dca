"""gRPC-web / Connect access to QueryService for browsers, and the dashboard's static files, as one ASGI app.

The browser speaks gRPC-web (or Connect) over HTTP/1.1; the `connectrpc` package decodes it. Every call is then
handed to the SAME chain the gRPC server runs — `ReadTokenInterceptor` (read-token auth, merchant isolation) and
`QueryServicer` (conversion, engine, the one error mapping) — through a small bridge that plays the part of a
gRPC server for one call. There is no second implementation of any query or of any auth rule.

Modules: `bridge` (blocking: one call through interceptor + servicer), `connect` (the Connect/gRPC-web ASGI
application derived from the QueryService descriptor), `static` (the built dashboard), `app` (routing + CORS),
`settings` (GNOMON_WEB_*), `server` (uvicorn on a bound socket, `create_web_server(settings, deps)`).
"""
