import { afterEach, describe, expect, it } from 'vitest';
import { clearRegisteredSecrets, createMemoryLogger, redact, registerSecret } from '../../src/log.js';

describe('structured logger', () => {
  afterEach(() => clearRegisteredSecrets());

  it('writes one JSON object per line with level, message and fields', () => {
    const log = createMemoryLogger('info');
    log.child({ connectionId: 'contosotasks' }).info('crawl started', { crawlId: 'c1' });
    log.debug('hidden at info');
    expect(log.lines).toHaveLength(1);
    const line = JSON.parse(log.lines[0]!);
    expect(line).toMatchObject({ level: 'info', msg: 'crawl started', connectionId: 'contosotasks', crawlId: 'c1' });
    expect(typeof line.time).toBe('string');
  });

  it('never writes a registered secret, a bearer token or a JWT', () => {
    registerSecret('s3cr3t-value-123');
    const log = createMemoryLogger('debug');
    log.error('failed with s3cr3t-value-123 inside', {
      header: 'Bearer abc.def.ghi',
      nested: { err: new Error('token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl leaked') },
      clientSecret: 'plain-but-named-secret',
    });
    const text = log.lines.join('\n');
    expect(text).not.toContain('s3cr3t-value-123');
    expect(text).not.toContain('abc.def.ghi');
    expect(text).not.toContain('eyJhbGciOiJSUzI1NiJ9');
    expect(text).not.toContain('plain-but-named-secret');
    expect(text).toContain('[REDACTED]');
  });

  it('redact leaves ordinary text alone', () => {
    expect(redact('nothing to hide here')).toBe('nothing to hide here');
  });
});

describe('pretty lines', () => {
  it('leave undefined fields out (no "status=undefined" on a rejected record)', async () => {
    const { createLogger } = await import('../../src/log.js');
    const lines: string[] = [];
    createLogger({ pretty: true, write: (l) => lines.push(l) }).warn('record rejected', {
      recordKey: 'T1',
      status: undefined,
      code: undefined,
    });
    expect(lines[0]).toBe('warn  record rejected  recordKey=T1');
  });
});
