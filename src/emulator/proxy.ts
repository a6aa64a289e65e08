/**
 * Proxy mode: an HTTP proxy (CONNECT, as `https_proxy` clients and undici's ProxyAgent speak it) that answers
 * for https://graph.microsoft.com and https://login.microsoftonline.com itself, with TLS from a certificate the
 * emulator's CA issued, so code written for the real service runs against the emulator unchanged — the way
 * Microsoft's connector samples run against Dev Proxy. Every other host is refused (403), never forwarded.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { withOrigins } from './origin.js';
import { INTERCEPTED_HOSTS } from './tls.js';

const GRAPH = 'graph.microsoft.com';
const LOGIN = 'login.microsoftonline.com';
const ORIGINS = { graph: `https://${GRAPH}`, authority: `https://${LOGIN}` };

export interface ProxyServer {
  server: Server;
  /** Requests refused because they named another host. */
  refused: string[];
  close(): Promise<void>;
}

function refuse(socket: Duplex, target: string): void {
  const body = `The graph-connector emulator's proxy answers only for ${INTERCEPTED_HOSTS.join(' and ')} (port 443); it never forwards to '${target}'.\n`;
  socket.end(
    `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * Start the proxy. `handler` is the emulator's request handler; requests that arrive through the intercepted TLS
 * run with Graph's and the authority's real origins, so every URL the emulator writes back points at them.
 */
export function createProxy(
  tls: { key: string; cert: string },
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  log: (line: string) => void,
): ProxyServer {
  const refused: string[] = [];
  const tunnels = new Set<Duplex>();
  const intercept = createHttpsServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const host = String(req.headers.host ?? '')
      .replace(/:443$/, '')
      .toLowerCase();
    const path = (req.url ?? '/').split('?')[0]!;
    const graphPath = /^\/(v1\.0|beta)(\/|$)/.test(path);
    // Each host serves only what the real one does: Graph under graph.microsoft.com, identity under login.
    if ((host === GRAPH && !graphPath) || (host === LOGIN && (graphPath || path.startsWith('/_emulator')))) {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'NotFound', message: `No route ${req.method} ${path} on ${host}.` } }));
      return;
    }
    withOrigins(ORIGINS, () => handler(req, res));
  });
  intercept.on('tlsClientError', (err) => log(`emulator proxy: TLS handshake failed: ${err.message}`));

  const server = createHttpServer((req, res) => {
    // A plain-HTTP proxy request (absolute URL): never forwarded.
    const target = req.url ?? '';
    refused.push(target);
    log(`emulator proxy: refused ${req.method} ${target} (only CONNECT to ${INTERCEPTED_HOSTS.join(', ')})`);
    res.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' });
    res.end(`The graph-connector emulator's proxy never forwards requests ('${target}').\n`);
  });
  server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const target = req.url ?? '';
    const m = /^([^:]+):(\d+)$/.exec(target);
    const host = m?.[1]?.toLowerCase();
    if (!m || !host || !INTERCEPTED_HOSTS.includes(host) || m[2] !== '443') {
      refused.push(target);
      log(`emulator proxy: refused CONNECT ${target}`);
      refuse(socket, target);
      return;
    }
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length) socket.unshift(head);
    intercept.emit('connection', socket);
  });
  return {
    server,
    refused,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of tunnels) t.destroy();
        intercept.closeAllConnections();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
