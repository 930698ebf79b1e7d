/** The system of record: commands, the state machine, validation, checksums. */
export {
  type ApplyResult,
  decodeCommand,
  encodeCommand,
  PreparedCommand,
  type SorCommand,
  type SorCommandBody,
} from "./commands.ts";
export { CtlError, ERROR_STATUS, type ErrorBody, type ErrorCode } from "./errors.ts";
export { type CommittedEntry, DEFAULT_LIMITS, SorStateMachine } from "./state_machine.ts";
export { sorRaftStateMachine } from "./raft_adapter.ts";
export { type TableChecksum, tableChecksum, tableChecksums } from "./checksum.ts";
export { hashSecret, verifySecret } from "./secrets.ts";
export type { TableSchema } from "./validate.ts";
