import assert from "node:assert/strict";
import { clusterProcesses, CpuMeter, cpuSeconds } from "./proc_cpu.ts";

const linux = Deno.build.os === "linux";

Deno.test({
  name: "cpuSeconds grows while this process spins, and is undefined for a pid that is gone",
  ignore: !linux,
  fn() {
    const before = cpuSeconds(Deno.pid)!;
    const meter = new CpuMeter(new Map());
    meter.start();
    const until = performance.now() + 150;
    let x = 0;
    while (performance.now() < until) x += Math.sqrt(x + 1);
    assert(x > 0);
    const { wallSeconds, cpu } = meter.stop();
    assert(cpuSeconds(Deno.pid)! - before >= 0.05, "a 150 ms spin shows as CPU time");
    assert(cpu.get("client")! >= 0.05 && cpu.get("client")! <= wallSeconds + 0.05);
    assert.equal(cpuSeconds(2 ** 22 + 7), undefined);
  },
});

Deno.test({
  name: "clusterProcesses finds a process by the directory on its command line, named by --name",
  ignore: !linux,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ctl-proc-cpu-" });
    const child = new Deno.Command("sh", {
      args: ["-c", "sleep 30", "sh", "--name", "m2", `${dir}/data`],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      // Until the child has exec'd, its command line is still this process's.
      let found = clusterProcesses(dir);
      for (let i = 0; i < 100 && !found.has(child.pid); i++) {
        await new Promise((r) => setTimeout(r, 50));
        found = clusterProcesses(dir);
      }
      assert.equal(found.get(child.pid), "m2");
      assert.equal(found.has(Deno.pid), false);
    } finally {
      child.kill("SIGKILL");
      await child.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "CpuMeter splits off kernel time: a loop of system calls shows as system time",
  ignore: !linux,
  fn() {
    const meter = new CpuMeter(new Map());
    meter.start();
    const until = performance.now() + 300;
    // Each stat is a system call whose work is the kernel's, not this process's JS.
    while (performance.now() < until) Deno.statSync("/proc/self/stat");
    const { cpu, system } = meter.stop();
    const total = cpu.get("client")!;
    const kernel = system.get("client")!;
    assert(kernel >= 0.02, `300 ms of stat calls spent ${kernel} s in the kernel`);
    assert(kernel <= total, "kernel time is part of the total");
  },
});
