// The QueryService client over gRPC-web, and what to tell the user when a call fails.
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { QueryService } from "./gen/gnomon/v1/query_pb";

export type QueryClient = Client<typeof QueryService>;

export const TOKEN_REFUSED = "This read token was refused: create one with `gnomon key create --kind read`";

/** A client whose every call carries `authorization: Bearer <token>`; same origin unless `baseUrl` is given. */
export function makeClient(token: string, baseUrl: string = window.location.origin): QueryClient {
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  return createClient(QueryService, createGrpcWebTransport({ baseUrl, interceptors: [auth] }));
}

export type ProblemKind = "token" | "filters" | "busy" | "unavailable" | "slow" | "invalid" | "other";

export interface Problem {
  kind: ProblemKind;
  /** One sentence saying what happened and what to do. */
  title: string;
  /** The server's own words, for the curious. */
  detail: string;
  /** Worth retrying by itself (the panel retries on the next refresh). */
  transient: boolean;
}

export function isAbort(err: unknown): boolean {
  return ConnectError.from(err).code === Code.Canceled;
}

/** Turn any failure of a call into a Problem. `filters`: the dashboard filters it carried, in words ("" = none). */
export function describe(err: unknown, filters: string): Problem {
  const e = ConnectError.from(err);
  const detail = e.rawMessage;
  switch (e.code) {
    case Code.Unauthenticated:
    case Code.PermissionDenied:
      return { kind: "token", title: TOKEN_REFUSED, detail, transient: false };
    case Code.NotFound:
      return {
        kind: "token",
        title: "This read token's merchant does not exist any more: paste a token of an existing merchant.",
        detail,
        transient: false,
      };
    case Code.InvalidArgument:
      if (filters) {
        return {
          kind: "filters",
          title: `Not available filtered by ${filters}: the rollups do not combine these dimensions. Remove a filter to see it.`,
          detail,
          transient: false,
        };
      }
      return { kind: "invalid", title: `The query was refused: ${detail}`, detail, transient: false };
    case Code.ResourceExhausted:
      return { kind: "busy", title: "The query service is busy; retrying shortly.", detail, transient: true };
    case Code.DeadlineExceeded:
      return {
        kind: "slow",
        title: "The query took too long: choose a shorter date range, or retry.",
        detail,
        transient: true,
      };
    case Code.Unavailable:
    case Code.Unknown:
    case Code.Internal:
      if (e.code === Code.Internal) {
        return { kind: "other", title: "The query service failed (it logged why); retry later.", detail, transient: true };
      }
      return {
        kind: "unavailable",
        title: "Cannot reach the query service or its storage: check that `gnomon web` is running; retrying.",
        detail,
        transient: true,
      };
    default:
      return { kind: "other", title: `The query failed (${Code[e.code]}): ${detail}`, detail, transient: true };
  }
}
