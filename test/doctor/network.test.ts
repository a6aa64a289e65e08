/**
 * doctor when the network is not right: an authority whose certificate is not trusted, an authority that
 * refuses connections, a Graph endpoint that never answers (the per-check time limit).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doctorJson, envFor as envOf, names, startStack, type Names, type Stack } from './helpers.js';

let stack: Stack;
let emu: Stack['emu'];
let hang: { server: Server; sockets: Set<Socket>; port: number };
const envFor = (nm: Names, extra: Record<string, string | undefined> = {}) => envOf(stack, nm, extra);

beforeAll(async () => {
  stack = await startStack();
  emu = stack.emu;
  // A TCP server that accepts and never answers: a Graph endpoint that hangs.
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hang = { server, sockets, port: (server.address() as { port: number }).port };
});

afterAll(async () => {
  for (const s of hang?.sockets ?? []) s.destroy();
  await new Promise((r) => hang?.server.close(r));
  await stack?.close();
});

describe('graph-connector doctor: network failures', () => {
  it('an untrusted authority certificate (no GRAPH_CA_CERT_PATH): the token line says so and names the setting', async () => {
    const { by } = await doctorJson(envFor(names(), { GRAPH_CA_CERT_PATH: undefined }), '--timeout', '10s');
    const token = by('graph-token');
    expect(token.status).toBe('fail');
    expect(token.message).toContain(`the TLS certificate of ${emu.info.authorityHost} is not trusted`);
    expect(token.fix).toContain('GRAPH_CA_CERT_PATH');
  });

  it('an authority that refuses connections: the token line says it cannot be reached and names GRAPH_AUTHORITY_HOST', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    const { by } = await doctorJson(
      envFor(names(), { GRAPH_AUTHORITY_HOST: `https://127.0.0.1:${port}` }),
      '--timeout',
      '10s',
    );
    const token = by('graph-token');
    expect(token.status).toBe('fail');
    expect(token.message).toContain(`https://127.0.0.1:${port} cannot be reached`);
    expect(token.fix).toContain('GRAPH_AUTHORITY_HOST');
  });

  it('a Graph endpoint that never answers fails at the time limit; the checks after it still run', async () => {
    const nm = names();
    const started = Date.now();
    const { by } = await doctorJson(
      envFor(nm, { GRAPH_BASE_URL: `https://127.0.0.1:${hang.port}` }),
      '--timeout',
      '1s',
    );
    expect(Date.now() - started).toBeLessThan(12_000);
    expect(by('graph-token').status).toBe('pass');
    expect(by('graph-reachable')).toMatchObject({ status: 'fail' });
    expect(by('graph-reachable').message).toMatch(/did not finish within 1 s/);
    expect(by('connection').status).toBe('skip');
    expect(by('storage').message).not.toMatch(/^skipped/);
    expect(by('schedule').status).toBe('pass');
  });
});
