/**
 * The one place where the sidecar maps failures to HTTP: typed errors (stable codes) to a status
 * and a JSON body `{"error":{"code","message"}}`. Anything untyped is a bug: 500.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { LdbError, type LdbErrorCode } from "../ldb/errors.ts";

/** Stable codes of the sidecar's own request errors. */
export type SidecarErrorCode =
  | "bad_request"
  | "not_found"
  | "too_many_rows"
  | "no_ledger_updates"
  | "body_too_large";

/** An expected request failure with an HTTP status and a stable code. */
export class SidecarError extends Error {
  override name = "SidecarError";
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: SidecarErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const LDB_STATUS: Record<LdbErrorCode, ContentfulStatusCode> = {
  table_not_found: 404,
  bad_key: 400,
  seq_timeout: 504,
  ldb_unavailable: 503,
  read_only: 400,
  ldb_replay: 500,
  ldb_gap: 500,
  ldb_apply_failed: 500,
};

/** The JSON error body. */
export function errorBody(
  code: string,
  message: string,
): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

/** hono `onError` handler for the sidecar. */
export function onSidecarError(e: Error, c: Context): Response {
  if (e instanceof SidecarError) return c.json(errorBody(e.code, e.message), e.status);
  if (e instanceof LdbError) return c.json(errorBody(e.code, e.message), LDB_STATUS[e.code]);
  if (e instanceof HTTPException) {
    const status = e.status as ContentfulStatusCode;
    const code = status === 413 ? "body_too_large" : "bad_request";
    return c.json(errorBody(code, e.message || `HTTP ${status}`), status);
  }
  return c.json(errorBody("internal", e instanceof Error ? e.message : String(e)), 500);
}
