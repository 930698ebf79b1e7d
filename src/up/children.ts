/**
 * Runs the children of `ctl up`: starts each with its output in a log file, restarts one that
 * exits while the topology is up (with backoff), reports health, and stops them all in reverse
 * order with SIGTERM, then SIGKILL after a grace period.
 */
import { pipeOutputToFile } from "../util/child_output.ts";
import { log } from "../util/log.ts";
import type { ChildPlan } from "./topology.ts";

const logger = log("up");

/** How to run `ctl` again: this executable, plus `run -A main.ts` when run by `deno`. */
export function selfCommand(): string[] {
  const exe = Deno.execPath();
  const base = exe.split("/").pop() ?? "";
  if (base === "deno" || base.startsWith("deno.")) {
    return [exe, "run", "--allow-all", new URL(Deno.mainModule).pathname];
  }
  return [exe];
}

/** One child's state as the status table shows it. */
export interface ChildState {
  plan: ChildPlan;
  pid: number | null;
  state: "starting" | "healthy" | "unhealthy" | "restarting" | "stopped";
  restarts: number;
  logFile: string;
}

class Child {
  process: Deno.ChildProcess | null = null;
  state: ChildState["state"] = "starting";
  restarts = 0;
  stopping = false;

  constructor(readonly plan: ChildPlan, readonly logFile: string, readonly command: string[]) {}

  async start(): Promise<void> {
    const file = await Deno.open(this.logFile, { create: true, append: true });
    const [cmd, ...prefix] = this.command;
    this.process = new Deno.Command(cmd, {
      args: [...prefix, "--log-format", "json", ...this.plan.args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    pipeOutputToFile(this.process, file);
    this.state = "starting";
    this.process.status.then((status) => this.#exited(status));
  }

  #exited(status: Deno.CommandStatus): void {
    this.process = null;
    // A clean exit is a stop, not a crash: a terminal's Ctrl-C reaches the children directly
    // (they share its process group) before `stop()` runs.
    if (this.stopping || status.success) {
      this.state = "stopped";
      return;
    }
    this.restarts++;
    this.state = "restarting";
    const delayMs = Math.min(10_000, 250 * 2 ** Math.min(this.restarts, 6));
    logger.warn("{name} exited with code {code}; restarting in {delayMs} ms (log: {logFile})", {
      name: this.plan.name,
      code: status.code,
      delayMs,
      logFile: this.logFile,
    });
    setTimeout(() => {
      if (!this.stopping) this.start().catch((e) => logger.error("{e}", { e }));
    }, delayMs);
  }

  async checkHealth(): Promise<void> {
    if (!this.process) return;
    if (this.plan.healthUrl === null) {
      this.state = "healthy";
      return;
    }
    try {
      const res = await fetch(this.plan.healthUrl, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      this.state = res.ok ? "healthy" : (this.state === "starting" ? "starting" : "unhealthy");
    } catch {
      if (this.state !== "starting") this.state = "unhealthy";
    }
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    const p = this.process;
    if (!p) {
      this.state = "stopped";
      return;
    }
    try {
      p.kill("SIGTERM");
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        p.kill("SIGKILL");
      } catch { /* already gone */ }
    }, graceMs);
    await p.status;
    clearTimeout(timer);
    this.state = "stopped";
  }

  snapshot(): ChildState {
    return {
      plan: this.plan,
      pid: this.process?.pid ?? null,
      state: this.state,
      restarts: this.restarts,
      logFile: this.logFile,
    };
  }
}

/** The running topology. */
export class ChildGroup {
  readonly #children: Child[];

  constructor(plans: ChildPlan[], logDir: string, command: string[] = selfCommand()) {
    this.#children = plans.map((p) => new Child(p, `${logDir}/${p.name}.log`, command));
  }

  /** Starts the children in plan order. */
  async start(): Promise<void> {
    for (const c of this.#children) await c.start();
  }

  /** Polls health until every child is healthy; false when `timeoutMs` passes first. */
  async waitHealthy(timeoutMs: number, pollMs = 200): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      await this.checkHealth();
      if (this.#children.every((c) => c.state === "healthy")) return true;
      await new Promise((r) => setTimeout(r, pollMs));
    }
    return false;
  }

  async checkHealth(): Promise<void> {
    await Promise.all(this.#children.map((c) => c.checkHealth()));
  }

  states(): ChildState[] {
    return this.#children.map((c) => c.snapshot());
  }

  /** Stops every child, last started first. */
  async stop(graceMs = 5000): Promise<void> {
    for (const c of [...this.#children].reverse()) await c.stop(graceMs);
  }
}
