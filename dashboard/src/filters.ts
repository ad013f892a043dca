// Dashboard filters (clicked rows) as a QueryService FilterExpression: an AND of exact, case-sensitive matches
// (exact + case-sensitive lets the server read only the pinned rollup rows).
import { create } from "@bufbuild/protobuf";
import {
  FilterExpressionSchema,
  StringFilter_MatchType,
  type FilterExpression,
} from "./gen/gnomon/v1/query_pb";
import type { DimFilter } from "./state";

export const DIMENSION_LABELS: Record<string, string> = {
  pagePath: "Page",
  sessionSourceMedium: "Source / medium",
  sessionDefaultChannelGroup: "Channel",
  country: "Country",
  deviceCategory: "Device",
  browser: "Browser",
  operatingSystem: "OS",
  eventName: "Event",
};

export function filterExpression(filters: DimFilter[]): FilterExpression | undefined {
  if (filters.length === 0) return undefined;
  const leaves = filters.map((f) =>
    create(FilterExpressionSchema, {
      expr: {
        case: "filter",
        value: {
          fieldName: f.dimension,
          oneFilter: {
            case: "stringFilter",
            value: { matchType: StringFilter_MatchType.EXACT, value: f.value, caseSensitive: true },
          },
        },
      },
    }),
  );
  if (leaves.length === 1) return leaves[0];
  return create(FilterExpressionSchema, { expr: { case: "andGroup", value: { expressions: leaves } } });
}

/** Add (or replace: one value per dimension) a filter. */
export function withFilter(filters: DimFilter[], next: DimFilter): DimFilter[] {
  return [...filters.filter((f) => f.dimension !== next.dimension), next];
}

export function withoutFilter(filters: DimFilter[], dimension: string): DimFilter[] {
  return filters.filter((f) => f.dimension !== dimension);
}

/** "Device and Page" */
export function filterWords(filters: DimFilter[]): string {
  const names = filters.map((f) => DIMENSION_LABELS[f.dimension] ?? f.dimension);
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}
