/** CorePort over raft/mod.ts: a RawNode reading from a MemoryStorage that caches the disk log. */

import {
  type ConfChange,
  decodeConfChange,
  MemoryStorage,
  RawNode,
  type Ready,
  seededRandom,
} from "../../raft/mod.ts";
import type { Entry } from "../../raft/types.ts";
import type {
  ConfChangeRequest,
  CoreCreation,
  CoreOptions,
  CorePort,
  CoreReady,
} from "./core_port.ts";

/** Limits handed to the core. */
const MAX_SIZE_PER_MSG_BYTES = 1024 * 1024;
const MAX_INFLIGHT_MSGS = 256;
const SNAPSHOT_CHUNK_BYTES = 512 * 1024;

/** Builds a core from what was loaded from disk (or bootstraps a new cluster member). */
export function createCore(o: CoreOptions): CoreCreation {
  const storage = new MemoryStorage();
  let bootstrap: CoreCreation["bootstrap"] = null;
  if (o.bootstrapVoters !== null) {
    RawNode.bootstrap(storage, o.bootstrapVoters);
    bootstrap = { snapshot: storage.snapshot(), hardState: storage.hardState() };
  } else {
    if (o.snapshot !== null) storage.applySnapshot(o.snapshot);
    storage.setHardState(o.hardState);
    storage.append(o.entries);
  }
  const raw = new RawNode({
    id: o.id,
    electionTicks: o.electionTicks,
    heartbeatTicks: o.heartbeatTicks,
    storage,
    applied: bootstrap ? bootstrap.snapshot.meta.index : o.applied,
    maxSizePerMsgBytes: MAX_SIZE_PER_MSG_BYTES,
    maxInflightMsgs: MAX_INFLIGHT_MSGS,
    snapshotChunkBytes: SNAPSHOT_CHUNK_BYTES,
    preVote: true,
    checkQuorum: true,
    readOnly: "safe",
    random: seededRandom(o.seed),
  });
  // Readies handed out, so advance() gets the core's own object back.
  const outstanding = new WeakMap<CoreReady, Ready>();

  const toConfChange = (c: ConfChangeRequest): ConfChange => ({
    changes: [{
      type: c.type === "remove" ? "removeNode" : c.type === "addVoter" ? "addVoter" : "addLearner",
      nodeId: c.id,
    }],
  });

  const core: CorePort = {
    tick: () => raw.tick(),
    step: (m) => raw.step(m),
    propose: (data) => raw.propose(data),
    proposeConfChange: (c) => void raw.proposeConfChange(toConfChange(c)),
    applyConfChange: (e: Entry) => raw.applyConfChange(decodeConfChange(e.data)),
    readIndex: (context) => raw.readIndex(context),
    transferLeader: (to) => raw.transferLeader(to),
    reportUnreachable: (id) => raw.reportUnreachable(id),
    reportPeerDisconnected: (id) => raw.reportPeerDisconnected(id),
    reportSnapshot: (id, ok) => raw.reportSnapshot(id, ok),
    hasReady: () => raw.hasReady(),
    ready: () => {
      const rd = raw.ready();
      const out: CoreReady = {
        softState: rd.softState ?? null,
        hardState: rd.hardState ?? null,
        entries: rd.entries,
        snapshot: rd.snapshot ?? null,
        committedEntries: rd.committedEntries,
        messages: rd.messages,
        messagesAfterPersist: rd.messagesAfterPersist,
        readStates: rd.readStates,
        mustSync: rd.mustSync,
      };
      outstanding.set(out, rd);
      return out;
    },
    advance: (ready) => {
      const rd = outstanding.get(ready);
      if (rd === undefined) throw new Error("advance() with a Ready this core did not hand out");
      outstanding.delete(ready);
      raw.advance(rd);
    },
    status: () => {
      const s = raw.status();
      return {
        id: s.id,
        role: s.role,
        term: s.term,
        leader: s.leader,
        commitIndex: s.commit,
        members: Object.entries(s.progress).map(([id, p]) => ({
          id,
          voter: !p.learner,
          matchIndex: p.match,
          sendingSnapshot: p.state === "snapshot",
        })),
      };
    },
    confState: () => raw.status().conf,
    storageAppend: (entries) => storage.append(entries),
    storageSetHardState: (hs) => storage.setHardState(hs),
    storageApplySnapshot: (snap) => storage.applySnapshot(snap),
    storageCreateSnapshot: (index, conf, data) => storage.createSnapshot(index, conf, data),
    storageCompact: (index) => storage.compact(index),
    storageFirstIndex: () => storage.firstIndex(),
    storageTerm: (index) => storage.term(index),
    storageSnapshotIndex: () => storage.snapshotMeta().index,
    storageSnapshotResident: () => storage.snapshotResident(),
    storageReleaseSnapshotData: () => storage.releaseSnapshotData(),
    storageWantedSnapshot: () => storage.wantedSnapshot(),
    storageRestoreSnapshotData: (index, data) => storage.restoreSnapshotData(index, data),
  };
  return { core, bootstrap };
}
