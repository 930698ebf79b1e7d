import { writeAllSync } from "./write_all.ts";

/**
 * Copies a child process's stdout and stderr into one log file, and closes the file when both
 * streams end. Children are spawned with `stdout: "piped", stderr: "piped"` (Deno cannot hand a
 * file to a child directly).
 */
export function pipeOutputToFile(child: Deno.ChildProcess, file: Deno.FsFile): void {
  let open = 2;
  const copy = async (stream: ReadableStream<Uint8Array>) => {
    try {
      for await (const chunk of stream) writeAllSync(file, chunk);
    } finally {
      if (--open === 0) file.close();
    }
  };
  copy(child.stdout).catch(() => {});
  copy(child.stderr).catch(() => {});
}
