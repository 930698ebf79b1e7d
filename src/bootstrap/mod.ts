/** Bootstrap's public surface: install the newest published LDB snapshot. */
export {
  bootstrapLdb,
  type BootstrapOptions,
  type BootstrapProgress,
  type BootstrapResult,
  RETRIES_MAX,
} from "./bootstrap.ts";
export { BootstrapError, type BootstrapErrorCode, isRetryable } from "./errors.ts";
export { type ProgressReporter, terminalProgress } from "./progress.ts";
