/**
 * Serve Function handlers over real HTTP, as the Functions host would: a node:http server that turns each request
 * into an @azure/functions HttpRequest, calls the handler registered for `METHOD /api/route`, and writes its answer.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';

export type HttpHandler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

export interface FunctionsHttp {
  /** e.g. http://127.0.0.1:40123 */
  baseUrl: string;
  /** Requests served, newest last. */
  served: { method: string; path: string; status: number }[];
  close(): Promise<void>;
}

export async function serveFunctions(routes: Record<string, HttpHandler>): Promise<FunctionsHttp> {
  const served: FunctionsHttp['served'] = [];
  let n = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
        const handler = routes[`${req.method} ${url.pathname}`];
        let status = 404;
        let out: HttpResponseInit = { status };
        if (handler) {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
          const request = new HttpRequest({
            method: req.method ?? 'GET',
            url: url.toString(),
            headers,
            body: { string: Buffer.concat(chunks).toString('utf8') },
          });
          const name = url.pathname.split('/').pop() ?? 'http';
          out = await handler(
            request,
            new InvocationContext({ functionName: name, invocationId: `http-${++n}`, logHandler: () => {} }),
          );
          status = out.status ?? 200;
        }
        const headers = { ...(out.headers as Record<string, string> | undefined) };
        const body = out.jsonBody !== undefined ? JSON.stringify(out.jsonBody) : ((out.body as string) ?? '');
        served.push({ method: req.method ?? '', path: url.pathname, status });
        res.writeHead(status, headers);
        res.end(body);
      })().catch((err: unknown) => {
        res.writeHead(500);
        res.end(String((err as Error)?.message ?? err));
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    served,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
