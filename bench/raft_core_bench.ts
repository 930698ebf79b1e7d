/**
 * Raft core throughput: 3 nodes in memory, messages handed over directly, MemoryStorage, no
 * disk and no network. Measures committed-and-applied 100-byte entries per second when the
 * leader proposes in batches. The driver loop follows raft/DESIGN.md (persist, send, apply,
 * advance).
 *
 *   deno run bench/raft_core_bench.ts [seconds=3] [batch=1000]
 */

import { MemoryStorage, type Message, RawNode, seededRandom } from "../raft/mod.ts";

const seconds = Number(Deno.args[0] ?? 3);
const batch = Number(Deno.args[1] ?? 1000);
const entryBytes = 100;
const ids = ["n1", "n2", "n3"];

interface BenchNode {
  raw: RawNode;
  storage: MemoryStorage;
  applied: number;
}

const nodes = new Map<string, BenchNode>();
for (const [i, id] of ids.entries()) {
  const storage = new MemoryStorage();
  RawNode.bootstrap(storage, ids);
  const raw = new RawNode({
    id,
    electionTicks: 10,
    heartbeatTicks: 1,
    storage,
    maxSizePerMsgBytes: 1024 * 1024,
    maxInflightMsgs: 256,
    preVote: true,
    checkQuorum: true,
    readOnly: "safe",
    random: seededRandom(i + 1),
  });
  nodes.set(id, { raw, storage, applied: 0 });
}

let queue: Message[] = [];

function processReady(n: BenchNode): boolean {
  if (!n.raw.hasReady()) return false;
  const rd = n.raw.ready();
  for (const m of rd.messages) queue.push(m);
  if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
  n.storage.append(rd.entries);
  if (rd.hardState) n.storage.setHardState(rd.hardState);
  for (const m of rd.messagesAfterPersist) queue.push(m);
  if (rd.committedEntries.length > 0) {
    n.applied = rd.committedEntries[rd.committedEntries.length - 1].index;
  }
  n.raw.advance(rd);
  return true;
}

function stabilize(): void {
  for (;;) {
    let moved = false;
    for (const n of nodes.values()) moved = processReady(n) || moved;
    const q = queue;
    queue = [];
    for (const m of q) nodes.get(m.to)!.raw.step(m);
    if (!moved && q.length === 0) return;
  }
}

const leader = nodes.get("n1")!;
leader.raw.campaign();
stabilize();
if (leader.raw.status().role !== "leader") throw new Error("n1 did not become leader");

const payloads = Array.from({ length: batch }, (_, i) => {
  const b = new Uint8Array(entryBytes);
  b[0] = i & 0xff;
  return b;
});

function round(): void {
  leader.raw.proposeBatch(payloads);
  stabilize();
}

// Warm up the JIT, then measure.
for (let i = 0; i < 20; i++) round();
const startApplied = Math.min(...[...nodes.values()].map((n) => n.applied));
const start = performance.now();
let rounds = 0;
while (performance.now() - start < seconds * 1000) {
  round();
  rounds++;
  // Compact now and then, as a driver would, so memory stays bounded.
  if (rounds % 50 === 0) {
    for (const n of nodes.values()) {
      const snapIndex = n.storage.snapshot().meta.index;
      if (n.applied > snapIndex) {
        n.storage.createSnapshot(n.applied, undefined, new Uint8Array());
        n.storage.compact(n.applied);
      }
    }
  }
}
const elapsedS = (performance.now() - start) / 1000;
const committed = Math.min(...[...nodes.values()].map((n) => n.applied)) - startApplied;
const perSecond = Math.round(committed / elapsedS);
console.log(
  `raft core, 3 nodes in memory: ${committed} entries of ${entryBytes} B committed and applied on all ` +
    `nodes in ${elapsedS.toFixed(2)} s, batches of ${batch}: ${
      perSecond.toLocaleString("en-US")
    } entries/s`,
);
