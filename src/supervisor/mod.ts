/**
 * The supervisor's public surface: online LDB snapshots, their publication to `file://` or
 * `http(s)://` targets, the periodic loop, and the `GET /v1/snapshot` response for executives.
 */
export { SnapshotError, type SnapshotErrorCode } from "./errors.ts";
export {
  buildManifest,
  type Manifest,
  MANIFEST_NAME,
  parseManifest,
  SEQ_HEADER,
  SHA256_HEADER,
  type SnapshotEntry,
  snapshotName,
} from "./manifest.ts";
export { type PublishOptions, type PublishResult, publishSnapshot } from "./publish.ts";
export { snapshotResponse } from "./serve.ts";
export {
  currentLdbSeq,
  type LdbSnapshot,
  type SnapshotOptions,
  takeLdbSnapshot,
} from "./snapshot.ts";
export { type CycleResult, Supervisor, type SupervisorOptions } from "./supervisor.ts";
export { FileTarget, HttpTarget, openTarget, type SnapshotTarget, type Upload } from "./target.ts";
