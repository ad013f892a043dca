"""The query service: merchants' reports over the rollups (gRPC `gnomon.v1.QueryService`).

Layers, each a small module:
- core (wire-independent): `model` (typed requests/results), `catalog` (GA4-named dimensions and metrics),
  `dates` (ranges in the merchant's zone), `planner` (cube and grain), `reader` (active-version rollup reads),
  `aggregate` (sums, sketch unions, ratios), `filters`, `order`, `cache`, `report` (the pipeline),
  `realtime` (raw events), `engine` (`QueryEngine`, the facade the GA4 Data API layer will also call).
- gRPC: `convert` (proto <-> model), `servicer`, `auth` (read tokens, merchant isolation), `errors` (the one
  status mapping), `metrics`, `settings`, `server` (`create_server(settings, deps) -> (server, port)`).
"""
