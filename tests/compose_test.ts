/**
 * The deployment files parse and hang together: every container runs a `ctl` command with flags
 * (and CTL_* variables) that `ctl --help` knows, ports and volumes line up, and Kubernetes
 * identities are stable.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { parse, parseAllDocuments } from "yaml";
import { buildProgram } from "../cmd/main.ts";
import { envName } from "../cmd/cli.ts";

const COMPOSE = fileURLToPath(new URL("../compose/", import.meta.url));

/** The ctl (sub)command that `args` invokes, and the flags it accepts (with the global ones). */
function resolve(args: string[]): { cmd: Command; path: string; longFlags: Set<string> } {
  const program = buildProgram();
  let cmd: Command = program;
  const path: string[] = [];
  for (const word of args) {
    const sub = cmd.commands.find((c) => c.name() === word);
    if (!sub) break;
    cmd = sub;
    path.push(word);
  }
  assert.ok(path.length > 0, `"${args.join(" ")}" starts with a ctl command`);
  const longFlags = new Set<string>();
  for (const c of [program, cmd]) {
    for (const o of c.options) if (o.long) longFlags.add(o.long);
  }
  return { cmd, path: path.join(" "), longFlags };
}

/** Checks a container's args and environment against `ctl --help`; returns the flag values. */
function checkInvocation(
  where: string,
  args: string[],
  env: string[],
): Map<string, string> {
  const { path, longFlags } = resolve(args);
  const values = new Map<string, string>();
  args.forEach((a, i) => {
    if (!a.startsWith("--")) return;
    assert.ok(longFlags.has(a), `${where}: ctl ${path} has no flag ${a}`);
    values.set(a, args[i + 1]);
  });
  const envFlags = new Set([...longFlags].map((f) => envName(f.slice(2))));
  for (const name of env.filter((n) => n.startsWith("CTL_"))) {
    assert.ok(envFlags.has(name), `${where}: ${name} sets no flag of ctl ${path}`);
  }
  return values;
}

function portOf(listen: string | undefined): number {
  assert.ok(listen, "a --listen address");
  return Number(listen.split(":").pop());
}

Deno.test("docker-compose.yml: ctlstore's topology with valid ctl commands, ports, volumes", async () => {
  const doc = parse(await Deno.readTextFile(`${COMPOSE}/docker-compose.yml`), { merge: true });
  const services = doc.services as Record<string, {
    command: string[];
    environment?: Record<string, string>;
    ports?: string[];
    volumes?: string[];
  }>;
  assert.deepEqual(
    Object.keys(services).sort(),
    ["e1", "e2", "e3", "heartbeat", "reflector", "sidecar", "supervisor"],
  );
  const ldbVolumes = new Map<string, string>();
  for (const [name, svc] of Object.entries(services)) {
    const flags = checkInvocation(name, svc.command, Object.keys(svc.environment ?? {}));
    if (name.startsWith("e")) {
      assert.equal(svc.command[0], "executive");
      assert.equal(flags.get("--id"), name);
      assert.ok(flags.get("--peers")?.includes(`${name}=http://${name}:7001`));
      const [, target] = svc.ports![0].split(":");
      assert.equal(Number(target), portOf(flags.get("--listen")), `${name} publishes its port`);
      assert.ok(svc.volumes?.some((v) => v.endsWith(`:${flags.get("--data")}`)), "data volume");
    }
    if (flags.has("--ldb")) {
      const volume = svc.volumes!.find((v) => flags.get("--ldb")!.startsWith(v.split(":")[1]));
      assert.ok(volume, `${name} mounts the LDB's folder`);
      ldbVolumes.set(name, volume.split(":")[0]);
    }
  }
  assert.equal(
    new Set(ldbVolumes.values()).size,
    1,
    "reflector, sidecar, supervisor share the LDB",
  );
  assert.deepEqual([...ldbVolumes.keys()].sort(), ["reflector", "sidecar", "supervisor"]);
  const sidecar = checkInvocation("sidecar", services.sidecar.command, []);
  assert.ok(services.sidecar.ports?.includes(`1331:${portOf(sidecar.get("--listen"))}`));
  for (const name of ["reflector", "heartbeat"]) {
    const executives = checkInvocation(name, services[name].command, []).get("--executive");
    assert.equal(executives, "http://e1:7001,http://e2:7001,http://e3:7001");
  }
  const dockerfile = await Deno.readTextFile(`${COMPOSE}/Dockerfile`);
  assert.match(dockerfile, /COPY dist\/ctl\.js/);
  assert.match(dockerfile, /ENTRYPOINT \["deno", "run", "--allow-all", "\/app\/ctl\.js"\]/);
});

interface Container {
  name: string;
  args: string[];
  env?: { name: string }[];
  ports?: { containerPort: number; hostPort?: number }[];
  volumeMounts?: { name: string; mountPath: string }[];
}

async function kubernetesObjects() {
  const objects: { kind: string; metadata: { name: string }; spec: Record<string, unknown> }[] = [];
  for await (const entry of Deno.readDir(`${COMPOSE}/kubernetes`)) {
    const text = await Deno.readTextFile(`${COMPOSE}/kubernetes/${entry.name}`);
    for (const doc of parseAllDocuments(text)) objects.push(doc.toJS());
  }
  return objects;
}

function containersOf(o: { spec: Record<string, unknown> }): Container[] {
  // deno-lint-ignore no-explicit-any
  return (o.spec as any).template.spec.containers;
}

Deno.test("kubernetes: executives as a StatefulSet behind a headless service; readers per node", async () => {
  const objects = await kubernetesObjects();
  const find = (kind: string, name: string) => {
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
    assert.ok(o, `${kind} ${name} exists`);
    return o;
  };
  const sts = find("StatefulSet", "ctl-executive");
  // deno-lint-ignore no-explicit-any
  const spec = sts.spec as any;
  const headless = find("Service", spec.serviceName);
  assert.equal(headless.spec.clusterIP, "None", "the StatefulSet's service is headless");
  const [exec] = containersOf(sts);
  const flags = checkInvocation("executive", exec.args, exec.env!.map((e) => e.name));
  const peers = flags.get("--peers")!.split(",");
  assert.equal(peers.length, spec.replicas, "one peer per replica");
  peers.forEach((p, i) =>
    assert.equal(
      p,
      `ctl-executive-${i}=http://ctl-executive-${i}.${spec.serviceName}:${
        portOf(flags.get("--listen"))
      }`,
      "stable DNS identities",
    )
  );
  assert.equal(exec.ports![0].containerPort, portOf(flags.get("--listen")));
  assert.ok(exec.env!.some((e) => e.name === "CTL_ID"), "the pod name is the member id");
  assert.ok(
    exec.volumeMounts!.some((m) => m.mountPath === flags.get("--data")),
    "data on the claim",
  );
  assert.equal(spec.volumeClaimTemplates[0].metadata.name, exec.volumeMounts![0].name);

  const ds = find("DaemonSet", "ctl-reader");
  const containers = containersOf(ds);
  // deno-lint-ignore no-explicit-any
  const hostPath = (ds.spec as any).template.spec.volumes.find((v: any) => v.hostPath);
  assert.ok(hostPath, "the LDB is on a host path, readable by apps on the node");
  for (const name of ["reflector", "sidecar"]) {
    const c = containers.find((x) => x.name === name)!;
    const f = checkInvocation(name, c.args, (c.env ?? []).map((e) => e.name));
    const mount = c.volumeMounts!.find((m) => m.name === hostPath.name)!;
    assert.ok(f.get("--ldb")!.startsWith(mount.mountPath), `${name} uses the host-path LDB`);
    if (name === "sidecar") assert.equal(c.ports![0].containerPort, portOf(f.get("--listen")));
  }
  for (
    const o of objects.filter((x) => ["Deployment", "DaemonSet", "StatefulSet"].includes(x.kind))
  ) {
    for (const c of containersOf(o)) {
      checkInvocation(`${o.metadata.name}/${c.name}`, c.args, (c.env ?? []).map((e) => e.name));
    }
  }
});
