/**
 * The nemesis: one kind of fault per schedule, injected and healed in turns, every choice drawn
 * from the schedule's seeded generator (which member, which split, how long). Real processes and
 * a real network keep the timing from being bit-for-bit reproducible; the sequence of decisions
 * is.
 */
import { sleep } from "../system/harness.ts";
import type { FaultCluster } from "./cluster.ts";

/** The fault kinds, each its own schedule. `mixed` draws one kind per round. */
export const FAULT_KINDS = [
  "kill",
  "pause",
  "partition-majority",
  "partition-leader",
  "partition-bridge",
  "partition-oneway",
  "latency",
  "clock",
  "disk",
] as const;
export type FaultKind = typeof FAULT_KINDS[number];
export type ScheduleKind = FaultKind | "mixed" | "none";

/** One line of the nemesis log. */
export interface NemesisEvent {
  /** Milliseconds since the workload started. */
  atMs: number;
  action: "inject" | "heal";
  kind: FaultKind | "all";
  detail: string;
}

/** Draws from the schedule's generator. */
export class Dice {
  constructor(readonly rand: () => number) {}

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rand() * (hi - lo + 1));
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)];
  }

  shuffle<T>(xs: readonly T[]): T[] {
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.rand() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  chance(p: number): boolean {
    return this.rand() < p;
  }
}

/** Clock offsets a clock fault jumps to (libfaketime syntax); +25h outlives a day's retention. */
export const CLOCK_JUMPS = ["-2h", "-10m", "-5s", "+5s", "+10m", "+2h", "+25h"];

/** Injects and heals faults of one kind against a cluster. */
export class Nemesis {
  readonly events: NemesisEvent[] = [];
  #heals: (() => Promise<void>)[] = [];

  constructor(
    readonly cluster: FaultCluster,
    readonly dice: Dice,
    readonly now: () => number,
  ) {}

  #log(action: "inject" | "heal", kind: FaultKind | "all", detail: string): void {
    this.events.push({ atMs: Math.round(this.now()), action, kind, detail });
  }

  /** The member a fault targets: the leader half of the time (when one is known). */
  async #target(): Promise<string> {
    const ids = this.cluster.ids;
    if (this.dice.chance(0.5)) {
      const leader = await this.cluster.currentLeader();
      if (leader) return leader;
    }
    return this.dice.pick(ids);
  }

  /** Runs rounds of (calm, fault) until `durationMs` has passed, then heals everything. */
  async run(kind: ScheduleKind, durationMs: number): Promise<void> {
    const end = this.now() + durationMs;
    while (this.now() < end) {
      await sleep(this.dice.int(800, 2000));
      if (kind === "none" || this.now() >= end) continue;
      const k = kind === "mixed" ? this.dice.pick(FAULT_KINDS) : kind;
      await this.inject(k);
      await sleep(Math.min(this.dice.int(1500, 4000), Math.max(0, end - this.now())));
      await this.healAll();
    }
    await this.healAll();
  }

  async inject(kind: FaultKind): Promise<void> {
    const c = this.cluster;
    const ids = c.ids;
    switch (kind) {
      case "kill": {
        const id = await this.#target();
        await c.member(id).process.kill("SIGKILL");
        this.#log("inject", kind, `kill -9 ${id}`);
        this.#heals.push(() => {
          if (!c.member(id).process.running) c.member(id).process.start();
          this.#log("heal", kind, `restart ${id}`);
          return Promise.resolve();
        });
        break;
      }
      case "pause": {
        const id = await this.#target();
        c.member(id).process.signal("SIGSTOP");
        this.#log("inject", kind, `SIGSTOP ${id}`);
        this.#heals.push(() => {
          c.member(id).process.signal("SIGCONT");
          this.#log("heal", kind, `SIGCONT ${id}`);
          return Promise.resolve();
        });
        break;
      }
      case "partition-majority": {
        // The minority holds the leader half of the time.
        const minoritySize = Math.floor((ids.length - 1) / 2);
        const leader = this.dice.chance(0.5) ? await c.currentLeader() : null;
        const rest = this.dice.shuffle(ids.filter((x) => x !== leader));
        const minority = leader ? [leader, ...rest.slice(0, minoritySize - 1)] : rest.slice(
          0,
          minoritySize,
        );
        const majority = ids.filter((x) => !minority.includes(x));
        await c.net.partition(minority, majority);
        this.#log("inject", kind, `${minority.join(",")} | ${majority.join(",")}`);
        this.#pushNetHeal(kind);
        break;
      }
      case "partition-leader": {
        // The leader (when one is known) alone on its side.
        const leader = (await c.currentLeader()) ?? this.dice.pick(ids);
        const others = ids.filter((x) => x !== leader);
        await c.net.partition([leader], others);
        this.#log("inject", kind, `${leader} (leader) | ${others.join(",")}`);
        this.#pushNetHeal(kind);
        break;
      }
      case "partition-bridge": {
        // Two halves that only the middle member talks to (Jepsen's bridge).
        const order = this.dice.shuffle(ids);
        const mid = Math.floor(order.length / 2);
        const left = order.slice(0, mid);
        const bridge = order[mid];
        const right = order.slice(mid + 1);
        await c.net.partition(left, right);
        this.#log("inject", kind, `${left.join(",")} <- ${bridge} -> ${right.join(",")}`);
        this.#pushNetHeal(kind);
        break;
      }
      case "partition-oneway": {
        // One member's requests to every other member are dropped; theirs to it get through.
        const id = await this.#target();
        for (const other of ids.filter((x) => x !== id)) {
          await c.net.cut({ from: id, to: other });
        }
        this.#log("inject", kind, `${id} -> others dropped (others -> ${id} delivered)`);
        this.#pushNetHeal(kind);
        break;
      }
      case "latency": {
        const delayMs = this.dice.int(50, 250);
        const jitterMs = Math.floor(delayMs / 2);
        for (const id of ids) await c.setDelay(id, delayMs, jitterMs);
        this.#log("inject", kind, `delay ${delayMs}ms ±${jitterMs}ms into every member`);
        this.#heals.push(async () => {
          for (const id of ids) await c.setDelay(id, 0, 0);
          this.#log("heal", kind, "delays removed");
        });
        break;
      }
      case "clock": {
        const id = await this.#target();
        const offset = this.dice.pick(CLOCK_JUMPS);
        await c.setClock(id, offset);
        this.#log("inject", kind, `clock of ${id} jumps to ${offset}`);
        this.#heals.push(async () => {
          await c.setClock(id, "+0");
          this.#log("heal", kind, `clock of ${id} back to +0`);
        });
        break;
      }
      case "disk": {
        const id = await this.#target();
        const member = c.member(id);
        const disk = member.disk;
        if (!disk) throw new Error(`Member ${id} has no small disk: the schedule must mount them`);
        const logOffset = await fileSize(member.process.logFile);
        await disk.fill();
        this.#log("inject", kind, `data disk of ${id} full`);
        this.#heals.push(async () => {
          await disk.free();
          // A member whose Raft loop stopped on the full disk stays up but serves nothing: an
          // operator would restart it once space is back.
          const stopped = (await readFrom(member.process.logFile, logOffset)).includes(
            "Raft loop failed",
          );
          if (stopped) await member.process.kill("SIGKILL");
          const restart = !member.process.running;
          if (restart) member.process.start();
          this.#log(
            "heal",
            kind,
            `disk of ${id} freed${
              stopped ? "; its Raft loop had stopped (log: Raft loop failed): restarted" : ""
            }${!stopped && restart ? "; it had exited: restarted" : ""}`,
          );
        });
        break;
      }
    }
  }

  #pushNetHeal(kind: FaultKind): void {
    this.#heals.push(async () => {
      await this.cluster.net.heal();
      this.#log("heal", kind, "network healed");
    });
  }

  /** Heals every fault in place, and restarts any member that is not running. */
  async healAll(): Promise<void> {
    for (const heal of this.#heals.splice(0).reverse()) await heal();
    for (const m of this.cluster.members) {
      if (!m.process.running) {
        m.process.start();
        this.#log("heal", "all", `${m.id} was not running: restarted`);
      }
    }
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

async function readFrom(path: string, offset: number): Promise<string> {
  try {
    const bytes = await Deno.readFile(path);
    return new TextDecoder().decode(bytes.subarray(offset));
  } catch {
    return "";
  }
}
