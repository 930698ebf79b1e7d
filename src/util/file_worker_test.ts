import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import { readCheckedFileInWorker, writeFileAtomicInWorker } from "./file_worker.ts";

Deno.test("writeFileAtomicInWorker writes the parts and their CRC-32, leaving no temporary", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctl-file-worker-" });
  try {
    const a = new Uint8Array(5 * 1024 * 1024).map((_, i) => i & 255);
    const b = new TextEncoder().encode("tail");
    await writeFileAtomicInWorker(`${dir}/f`, [a, b], { appendCrc32: true });
    const got = await Deno.readFile(`${dir}/f`);
    assert.equal(got.length, a.length + b.length + 4);
    assert.deepEqual(got.subarray(0, a.length), a);
    const crc = new DataView(got.buffer).getUint32(got.length - 4, true);
    assert.equal(crc, crc32(got.subarray(0, got.length - 4)));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["f"]);
    await writeFileAtomicInWorker(`${dir}/g`, [b]);
    assert.equal(await Deno.readTextFile(`${dir}/g`), "tail");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomicInWorker rejects naming the file when it cannot write", async () => {
  await assert.rejects(
    writeFileAtomicInWorker("/nonexistent-dir-ctl/f", [new Uint8Array(3)]),
    /Cannot write \/nonexistent-dir-ctl\/f/,
  );
});

Deno.test("writeFileAtomicInWorker does not hold the caller's event loop for a large file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctl-file-worker-" });
  try {
    const big = new Uint8Array(192 * 1024 * 1024).fill(7);
    // Posting the whole buffer at once clones it in one go: 520–730 ms held here, every time.
    // Done right, the longest hold is starting the worker (14–60 ms, more on a loaded machine)
    // or copying one slice (2–3 ms). The better of two attempts is taken, so that one stall
    // of a busy machine is not taken for the cloning, which would show in both.
    const longestHolds: number[] = [];
    for (let attempt = 0; attempt < 2; attempt++) {
      let last = performance.now();
      let longest = 0;
      const ticker = setInterval(() => {
        const now = performance.now();
        longest = Math.max(longest, now - last);
        last = now;
      }, 1);
      try {
        await writeFileAtomicInWorker(`${dir}/big`, [big], { appendCrc32: true });
      } finally {
        clearInterval(ticker);
      }
      assert.equal((await Deno.stat(`${dir}/big`)).size, big.length + 4);
      longestHolds.push(longest);
    }
    const best = Math.min(...longestHolds);
    assert.ok(best < 150, `the event loop was held for ${best.toFixed(0)} ms`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readCheckedFileInWorker returns what was written before the CRC-32, null for no file, and refuses damage", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctl-file-worker-" });
  try {
    const a = new Uint8Array(3 * 1024 * 1024 + 7).map((_, i) => (i * 7) & 255);
    await writeFileAtomicInWorker(`${dir}/f`, [a], { appendCrc32: true });
    assert.deepEqual(await readCheckedFileInWorker(`${dir}/f`), a);
    assert.equal(await readCheckedFileInWorker(`${dir}/missing`), null);
    const buf = await Deno.readFile(`${dir}/f`);
    buf[12345] ^= 0x40;
    await Deno.writeFile(`${dir}/f`, buf);
    await assert.rejects(readCheckedFileInWorker(`${dir}/f`), /damaged/);
    await Deno.writeFile(`${dir}/short`, new Uint8Array(2));
    await assert.rejects(readCheckedFileInWorker(`${dir}/short`), /damaged/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomicInWorker copies a file part in place, CRC-32 over all, and fails on a missing one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ctl-file-worker-" });
  try {
    const middle = new Uint8Array(9 * 1024 * 1024 + 3).map((_, i) => (i * 13) & 255);
    await Deno.writeFile(`${dir}/middle`, middle);
    const head = new TextEncoder().encode("head");
    const tail = new TextEncoder().encode("tail");
    await writeFileAtomicInWorker(`${dir}/f`, [head, { file: `${dir}/middle` }, tail], {
      appendCrc32: true,
    });
    const body = await readCheckedFileInWorker(`${dir}/f`);
    assert.deepEqual(body, new Uint8Array([...head, ...middle, ...tail]));
    await assert.rejects(
      writeFileAtomicInWorker(`${dir}/g`, [head, { file: `${dir}/missing` }]),
      /Cannot write .*\/g/,
    );
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["f", "middle"],
      "no temporary left behind",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
