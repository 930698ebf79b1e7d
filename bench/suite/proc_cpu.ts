/**
 * CPU time of processes, from /proc: what the load generator and each cluster member spend per
 * acknowledged write. Linux only; elsewhere every figure reads as undefined.
 */

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU seconds a process has used in user space and in the kernel, or undefined once gone. */
export function cpuTimes(pid: number): { user: number; system: number } | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name, which may itself hold spaces: utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return {
      user: Number(fields[11]) / TICKS_PER_SECOND,
      system: Number(fields[12]) / TICKS_PER_SECOND,
    };
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a process has used, or undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  const t = cpuTimes(pid);
  return t && t.user + t.system;
}

/**
 * Processes of a cluster, found by their data directory on the command line: pid → member id
 * (the value after `--id` for ctl, `--name` for etcd; the pid when neither is there).
 */
export function clusterProcesses(dir: string): Map<number, string> {
  const found = new Map<number, string>();
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync("/proc");
  } catch {
    return found;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      if (cmd.some((a) => a.includes(dir))) {
        const flag = cmd.findIndex((a) => a === "--id" || a === "--name");
        found.set(Number(e.name), flag >= 0 ? cmd[flag + 1] : e.name);
      }
    } catch { /* exited meanwhile */ }
  }
  return found;
}

/** What a `CpuMeter` measured: CPU seconds per process name (user + system, and system alone). */
export interface CpuWindow {
  wallSeconds: number;
  cpu: Map<string, number>;
  system: Map<string, number>;
}

/** CPU used by a set of processes between `start()` and `stop()`. */
export class CpuMeter {
  #before = new Map<number, { user: number; system: number }>();
  #t0 = 0;

  /** `processes`: pid → name; this process is added as "client" (the load generator). */
  constructor(readonly processes: Map<number, string>) {
    this.processes = new Map(processes).set(Deno.pid, "client");
  }

  start(): void {
    this.#t0 = performance.now();
    for (const pid of this.processes.keys()) {
      this.#before.set(pid, cpuTimes(pid) ?? { user: NaN, system: NaN });
    }
  }

  /**
   * CPU seconds per process name over the window, and the window's wall seconds. A process gone
   * meanwhile counts 0: its figures went with it.
   */
  stop(): CpuWindow {
    const wallSeconds = (performance.now() - this.#t0) / 1000;
    const cpu = new Map<string, number>();
    const system = new Map<string, number>();
    for (const [pid, name] of this.processes) {
      const before = this.#before.get(pid) ?? { user: NaN, system: NaN };
      const after = cpuTimes(pid) ?? before;
      cpu.set(name, after.user + after.system - before.user - before.system);
      system.set(name, after.system - before.system);
    }
    return { wallSeconds, cpu, system };
  }
}
