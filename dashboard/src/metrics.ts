// The metrics the overview shows, by GA4 API name.
import { MetricType } from "./gen/gnomon/v1/query_pb";

export interface MetricDef {
  name: string;
  label: string;
  type: MetricType;
  lowerIsBetter: boolean;
}

export const KPI_METRICS: MetricDef[] = [
  { name: "totalUsers", label: "Users", type: MetricType.INTEGER, lowerIsBetter: false },
  { name: "sessions", label: "Sessions", type: MetricType.INTEGER, lowerIsBetter: false },
  { name: "screenPageViews", label: "Pageviews", type: MetricType.INTEGER, lowerIsBetter: false },
  { name: "bounceRate", label: "Bounce rate", type: MetricType.FLOAT, lowerIsBetter: true },
  { name: "averageSessionDuration", label: "Avg. session duration", type: MetricType.SECONDS, lowerIsBetter: false },
  { name: "totalRevenue", label: "Revenue", type: MetricType.CURRENCY, lowerIsBetter: false },
];

export const CHART_METRICS: MetricDef[] = [
  ...KPI_METRICS,
  { name: "engagementRate", label: "Engagement rate", type: MetricType.FLOAT, lowerIsBetter: false },
  { name: "eventCount", label: "Events", type: MetricType.INTEGER, lowerIsBetter: false },
  { name: "keyEvents", label: "Key events", type: MetricType.INTEGER, lowerIsBetter: false },
];

export function chartMetric(name: string): MetricDef {
  return CHART_METRICS.find((m) => m.name === name) ?? (CHART_METRICS[0] as MetricDef);
}
