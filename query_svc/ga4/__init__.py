"""The GA4 Data API (`google.analytics.data.v1beta.BetaAnalyticsData`) on the query service's port, over the same
QueryEngine as gnomon.v1.QueryService: GA4 requests are translated into the engine's request model
(`translate`), run (`run`) and answered with google-analytics-data's messages (`respond`). See `service`."""

from query_svc.ga4.service import GA4_SERVICE, Ga4Servicer, add_ga4_service

__all__ = ["GA4_SERVICE", "Ga4Servicer", "add_ga4_service"]
