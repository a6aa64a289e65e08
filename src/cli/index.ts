import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setMaxListeners } from 'node:events';
import { ConfigError } from '../config/problems.js';
import { ConnectorError } from '../core/errors.js';
import { tlsCodeOf, tlsDiagnosis } from '../graph/tls.js';
import { commands } from './commands/index.js';
import { UsageError, type CommandIo } from './command.js';

const VERSION = '0.1.0';

function topHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length), 8);
  return [
    'graph-connector — keep a Microsoft Graph (Copilot) connection in step with a source system',
    '',
    'Usage: graph-connector <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `graph-connector <command> --help` for the options of a command.',
  ].join('\n');
}

/**
 * Like the Functions host, read `local.settings.json` `Values` from the working folder; variables already in
 * the environment win. (The secret provider reads the same file for secrets; nothing is logged.)
 */
export function withLocalSettings(env: NodeJS.ProcessEnv, cwd: string): NodeJS.ProcessEnv {
  const file = join(cwd, 'local.settings.json');
  if (!existsSync(file)) return env;
  try {
    const values = (JSON.parse(readFileSync(file, 'utf8')) as { Values?: Record<string, unknown> }).Values ?? {};
    const merged: NodeJS.ProcessEnv = { ...env };
    for (const [k, v] of Object.entries(values)) if (merged[k] === undefined && typeof v === 'string') merged[k] = v;
    return merged;
  } catch (err) {
    process.stderr.write(`graph-connector: ignoring ${file}: ${(err as Error).message}\n`);
    return env;
  }
}

export async function main(argv: string[], io: Partial<Omit<CommandIo, 'argv'>> = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const env = io.env ?? withLocalSettings(process.env, process.cwd());
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const target = name === 'help' ? commands.find((c) => c.name === rest[0]) : undefined;
    stdout.write((target ? target.help : topHelp()) + '\n');
    return 0;
  }
  if (name === '--version' || name === '-v') {
    stdout.write(VERSION + '\n');
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    stderr.write(`graph-connector: unknown command '${name}'.\n\n${topHelp()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    stdout.write(command.help + '\n');
    return 0;
  }
  let abortSignal = io.abortSignal;
  let cleanup = () => {};
  if (!abortSignal) {
    const ac = new AbortController();
    // One signal is shared by every request in flight (the worker runs up to 25 at once, each with SDK calls).
    setMaxListeners(1000, ac.signal);
    const onSignal = () => ac.abort(new Error('interrupted'));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    cleanup = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
    abortSignal = ac.signal;
  }
  try {
    return await command.run({ argv: rest, stdout, stderr, env, abortSignal });
  } catch (err) {
    if (err instanceof ConfigError) {
      stderr.write(`graph-connector ${name}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof UsageError || (err instanceof ConnectorError && err.code === 'InvalidUsage')) {
      stderr.write(`graph-connector ${name}: ${err.message}\nRun \`graph-connector ${name} --help\` for usage.\n`);
      return 2;
    }
    const e = err as Error;
    const message = e?.message ?? String(err);
    stderr.write(`graph-connector ${name}: ${message}\n`);
    // A certificate problem the message does not already explain (any command, any call): the one diagnosis.
    const tlsCode = tlsCodeOf(err);
    if (tlsCode && !message.includes(tlsCode)) {
      const d = tlsDiagnosis(tlsCode, { caCertPath: env.GRAPH_CA_CERT_PATH });
      stderr.write(`  ${d.message}\n  fix: ${d.fix}\n`);
    }
    return 1;
  } finally {
    cleanup();
  }
}
