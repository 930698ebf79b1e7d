/**
 * A `cli-progress` bar for `bootstrapLdb` on a terminal, and plain log lines elsewhere (a bar in
 * a log file is noise). The library reports through a callback, so it stays testable; only the
 * command line builds this.
 */
import cliProgress from "cli-progress";
import { log } from "../util/log.ts";
import type { BootstrapProgress } from "./bootstrap.ts";

/** A progress sink: pass `onProgress` to bootstrapLdb and call `stop()` when it returns. */
export interface ProgressReporter {
  onProgress: (progress: BootstrapProgress) => void;
  stop(): void;
}

const MIB = 1024 * 1024;

/** A bar on stderr when it is a terminal, else a log line per phase. */
export function terminalProgress(isTerminal = Deno.stderr.isTerminal()): ProgressReporter {
  const logger = log("bootstrap");
  if (!isTerminal) {
    let lastPhase = "";
    return {
      onProgress: (p) => {
        if (p.phase === lastPhase && p.phase === "download") return;
        lastPhase = p.phase;
        if (p.phase === "retry") return; // bootstrapLdb logs retries itself.
        logger.info("Bootstrap {phase} (try {attempt})", { phase: p.phase, attempt: p.attempt });
      },
      stop: () => {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: "bootstrap {phase} [{bar}] {percentage}% {doneMiB}/{totalMiB} MiB try {attempt}",
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    onProgress: (p) => {
      const total = p.bytesTotal ?? Math.max(p.bytesDone, 1);
      const payload = {
        phase: p.phase,
        attempt: p.attempt,
        doneMiB: (p.bytesDone / MIB).toFixed(1),
        totalMiB: p.bytesTotal === undefined ? "?" : (p.bytesTotal / MIB).toFixed(1),
      };
      if (!started) {
        bar.start(total, p.bytesDone, payload);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(p.bytesDone, payload);
      }
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
