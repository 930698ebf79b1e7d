/** The heartbeat's public surface. */
export {
  Heartbeat,
  HEARTBEAT_FAMILY,
  HEARTBEAT_ROW,
  HEARTBEAT_TABLE,
  HEARTBEAT_WRITER,
  type HeartbeatOptions,
  type HeartbeatStats,
  unixNanos,
} from "./heartbeat.ts";
