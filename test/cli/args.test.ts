import { describe, expect, it } from 'vitest';
import { CONFIG_FLAG, defineCommand, parseDuration, parseWholeNumber } from '../../src/cli/args.js';
import { UsageError } from '../../src/cli/command.js';
import { captureCli } from '../support/cli.js';

describe('reading command arguments', () => {
  it('parses durations in ms, s, m and h (a bare number is seconds)', () => {
    expect(parseDuration('500ms', '--x')).toBe(500);
    expect(parseDuration('30s', '--x')).toBe(30_000);
    expect(parseDuration('1.5m', '--x')).toBe(90_000);
    expect(parseDuration('2h', '--x')).toBe(7_200_000);
    expect(parseDuration('7', '--x')).toBe(7_000);
    expect(() => parseDuration('soon', '--timeout')).toThrow(UsageError);
    expect(() => parseDuration('soon', '--timeout')).toThrow(/--timeout 'soon' is not a duration/);
  });

  it('parses whole numbers in a range, naming the flag, the range and the value', () => {
    expect(parseWholeNumber('--jobs', '5', 1, 50)).toBe(5);
    expect(() => parseWholeNumber('--jobs', '0', 1, 50)).toThrow("--jobs must be a whole number from 1 to 50, got '0'");
    expect(() => parseWholeNumber('--n', '1.5', 0, Infinity)).toThrow(
      "--n must be a whole number 0 or more, got '1.5'",
    );
    expect(() => parseWholeNumber('--n', '', 0, 9)).toThrow(UsageError);
    expect(() => parseWholeNumber('--c', '99', 1, 25, 'a limit')).toThrow(/from 1 to 25 \(a limit\)/);
  });

  it('a defined command gets its parsed flags; an unknown flag is a usage error (exit 2) before it runs', async () => {
    let ran: unknown;
    const command = defineCommand({
      name: 'probe',
      summary: 'test',
      help: 'Usage: graph-connector probe',
      args: { options: { ...CONFIG_FLAG, n: { type: 'string', default: '1' } } },
      async run({ values }) {
        ran = values;
        return 0;
      },
    });
    const io = captureCli();
    expect(await command.run(io.with(['-c', 'x.json']))).toBe(0);
    expect(ran).toEqual({ config: 'x.json', n: '1' });
    ran = undefined;
    await expect(command.run(io.with(['--bogus']))).rejects.toBeInstanceOf(UsageError);
    expect(ran).toBeUndefined();
  });
});
