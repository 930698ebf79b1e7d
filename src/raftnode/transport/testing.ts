/** Messages the transport tests send. */
import type { Message } from "../../../raft/types.ts";

/** An append from a to b of entry `index` (no entry when `data` is null). */
export function append(index: number, data: Uint8Array | null, commit = index - 1): Message {
  return {
    type: "MsgApp",
    from: "a",
    to: "b",
    term: 1,
    index: index - 1,
    logTerm: 1,
    commit,
    entries: data === null ? [] : [{ index, term: 1, type: "normal", data }],
  };
}
