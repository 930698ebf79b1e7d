/**
 * An opt-in record of when a process passed named points of the write path, to see where one
 * write's time goes across the client, the leader and its followers
 * (`bench/suite/timeline.ts` merges the records).
 *
 * Off unless `CTL_TIMELINE_DIR` names a directory: `mark` is then one boolean test. On, each mark
 * is a wall-clock time (`performance.timeOrigin + performance.now()`, comparable across the
 * processes of one machine) and a point name, kept in memory and appended to
 * `DIR/<pid>.timeline` every 200 ms, so that even a process killed with SIGKILL leaves all but
 * its last moments. Not for production: the buffer grows with the write rate until flushed.
 */

const FLUSH_EVERY_MS = 200;

const dir = (() => {
  try {
    return Deno.env.get("CTL_TIMELINE_DIR") || null;
  } catch {
    return null; // no --allow-env: off
  }
})();

let lines: string[] = [];

/** Is a timeline being recorded? */
export const timelineOn: boolean = dir !== null;

/** Records that this process passed `point` now. */
export function mark(point: string): void {
  if (!timelineOn) return;
  lines.push(`${(performance.timeOrigin + performance.now()).toFixed(3)} ${point}`);
}

/** Appends the marks so far to this process's file. */
export function flushTimeline(): void {
  if (!timelineOn || lines.length === 0) return;
  const text = lines.join("\n") + "\n";
  lines = [];
  Deno.writeTextFileSync(`${dir}/${Deno.pid}.timeline`, text, { append: true });
}

if (timelineOn) {
  Deno.mkdirSync(dir!, { recursive: true });
  Deno.unrefTimer(setInterval(flushTimeline, FLUSH_EVERY_MS));
  globalThis.addEventListener("unload", flushTimeline);
}
