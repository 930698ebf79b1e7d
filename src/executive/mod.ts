/** The executive's HTTP API and its backends. */
export { createExecutiveApp, type ExecutiveAppOptions } from "./app.ts";
export type { ExecutiveDeps, ExecutiveStatus } from "./deps.ts";
export { LOCAL_ADMIN_TOKEN, LocalExecutive, type LocalExecutiveOptions } from "./local.ts";
export { SeqWatch } from "./seq_watch.ts";
export { FORWARDED_HEADER } from "./forward.ts";
export { BODY_BYTES_MAX } from "./request.ts";
export { createRaftExecutiveDeps, type RaftDepsOptions, raftErrorToCtl } from "./raft_deps.ts";
export type { MembershipDeps } from "./deps.ts";
