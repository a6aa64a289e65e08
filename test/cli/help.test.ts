import { describe, expect, it } from 'vitest';
import { commands } from '../../src/cli/commands/index.js';
import { runCli } from '../support/cli.js';

const cli = (argv: string[]) => runCli(argv, {}, { abortSignal: AbortSignal.timeout(10_000) });

describe('graph-connector CLI', () => {
  it('lists every command', async () => {
    const { code, stdout } = await cli(['--help']);
    expect(code).toBe(0);
    for (const c of commands) expect(stdout).toContain(`  ${c.name}`);
    expect(commands.map((c) => c.name)).toEqual(
      expect.arrayContaining(['run', 'emulator', 'validate', 'provision', 'graph', 'doctor', 'status']),
    );
  });

  it.each(commands.map((c) => c.name))('%s --help prints its usage and exits 0', async (name) => {
    const { code, stdout } = await cli([name, '--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`Usage: graph-connector ${name}\\b`));
  });

  it('an unknown command or flag is a usage error (exit 2) that says what to do', async () => {
    const unknown = await cli(['crawl-everything']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'crawl-everything'/);
    const unknownFlag = await cli(['status', '--bogus']);
    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.stderr).toMatch(/--bogus/);
    const badFlag = await cli(['run', '--concurrency', '99']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/--concurrency must be a whole number from 1 to 25/);
  });
});
