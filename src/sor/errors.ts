/**
 * Expected failures of the system of record and the executive, as typed errors with stable codes.
 *
 * The code decides the HTTP status (one table, below), so the state machine, the HTTP layer and
 * the client all agree on what each failure means. A failure that is not a `CtlError` is a bug.
 */

/** Every expected failure, with the HTTP status it maps to. Codes are stable API. */
export const ERROR_STATUS = {
  bad_request: 400,
  invalid_json: 400,
  invalid_name: 400,
  invalid_field_type: 400,
  invalid_value: 400,
  missing_field: 400,
  unknown_field: 400,
  duplicate_key: 400,
  too_many_mutations: 400,
  destructive_changes_disabled: 400,
  unauthorized: 401,
  not_found: 404,
  family_not_found: 404,
  table_not_found: 404,
  writer_not_found: 404,
  limit_not_found: 404,
  family_exists: 409,
  table_exists: 409,
  field_exists: 409,
  writer_exists: 409,
  cookie_conflict: 409,
  body_too_large: 413,
  ledger_gone: 410,
  idempotency_key_reused: 422,
  rate_limited: 429,
  internal: 500,
  no_leader: 503,
  overloaded: 503,
  timeout: 503,
  table_size_limit_exceeded: 507,
} as const;

/** A stable error code. */
export type ErrorCode = keyof typeof ERROR_STATUS;

/** The JSON shape of an error, in HTTP bodies (`{"error": …}`) and in failed apply results. */
export interface ErrorBody {
  code: ErrorCode;
  status: number;
  message: string;
}

/** An expected failure: maps to `ERROR_STATUS[code]` and a JSON body naming the problem. */
export class CtlError extends Error {
  override name = "CtlError";
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
    this.status = ERROR_STATUS[code];
  }

  toBody(): ErrorBody {
    return { code: this.code, status: this.status, message: this.message };
  }

  static fromBody(body: ErrorBody): CtlError {
    const code = body.code in ERROR_STATUS ? body.code : "internal";
    return new CtlError(code, body.message);
  }
}

/** Whether `code` is one of the stable error codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ERROR_STATUS, code);
}
