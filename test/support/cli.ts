/** Running `graph-connector` in-process with its output captured: for the CLI, provision and doctor tests. */
import { Writable } from 'node:stream';
import { main } from '../../src/cli/index.js';
import type { CommandIo } from '../../src/cli/command.js';

/** A stream that keeps what is written to it. */
export function textSink(): { stream: Writable; text(): string } {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(chunk, _encoding, done) {
        chunks.push(String(chunk));
        done();
      },
    }),
    text: () => chunks.join(''),
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `graph-connector <argv>` through main(). Without `abortSignal`, main() listens for SIGINT/SIGTERM itself. */
export async function runCli(
  argv: string[],
  env: NodeJS.ProcessEnv = {},
  options: { abortSignal?: AbortSignal } = {},
): Promise<CliResult> {
  const out = textSink();
  const err = textSink();
  const code = await main(argv, {
    env,
    stdout: out.stream,
    stderr: err.stream,
    ...(options.abortSignal ? { abortSignal: options.abortSignal } : {}),
  });
  return { code, stdout: out.text(), stderr: err.text() };
}

/** A CommandIo with captured output, for running one command directly: `with(argv)` gives the io for a call. */
export function captureCli(env: NodeJS.ProcessEnv = {}) {
  const out = textSink();
  const err = textSink();
  return {
    stdout: () => out.text(),
    stderr: () => err.text(),
    with: (argv: string[]): CommandIo => ({
      argv,
      env,
      stdout: out.stream,
      stderr: err.stream,
      abortSignal: new AbortController().signal,
    }),
  };
}
