import { readFile } from 'node:fs/promises';
import { VERBOSE_FLAG, defineCommand, parseDuration, parseWholeNumber } from '../args.js';
import { UsageError } from '../command.js';
import { loadEnvironment } from '../../config/env.js';
import { createGraphCredential } from '../../graph/credentials.js';
import { GraphConnectorClient } from '../../graph/client.js';
import { GraphError } from '../../graph/errors.js';
import { commandLogger, redact, redactValue } from '../../log.js';
import { createSecretProvider } from '../../secrets/index.js';

/** Percent-encodes a query part but keeps OData's `$` and `,` readable (`$select=id,name`). */
const queryEncode = (v: string) => encodeURIComponent(v).replace(/%24/g, '$').replace(/%2C/gi, ',');

const METHODS = ['GET', 'POST', 'PATCH', 'PUT', 'DELETE'] as const;
type Method = (typeof METHODS)[number];

const help = `Usage: graph-connector graph <METHOD> <PATH> [options]

Sends one raw Microsoft Graph request with the connector's own identity (GRAPH_* environment variables).
PATH is relative to the versioned base URL (e.g. external/connections), or an absolute URL on the same host.

Options:
  -d, --data <json|@file>        request body (JSON text, or @path to read it from a file)
  -H, --header <name:value>      extra request header (repeatable)
  -q, --query <name=value>       query parameter (repeatable), e.g. --query '$select=id,name'
      --response-type <t>        json (default, pretty-printed) | text | binary (raw bytes to stdout)
      --timeout <dur>            per-attempt timeout (default 100s; e.g. 30s, 2m)
      --max-retries <n>          retries on 429/5xx/network errors (default 4; 0 = none)
      --retry-delay <dur>        backoff base delay (default 500ms); Retry-After is always honoured
      --retry-on-all-errors      also retry 4xx answers
      --backoff <kind>           exponential (default, full jitter) | fixed
      --api-version <v>          v1.0 or beta (default: GRAPH_API_VERSION or v1.0)
      --debug                    print the request and response headers to stderr (token redacted)
  -v, --verbose                  log at info level (default: warnings and errors)

Examples (the connector's own calls first):
  graph-connector graph GET external/connections
  graph-connector graph GET external/connections/contosotasks/schema
  graph-connector graph GET external/connections/contosotasks/items/TSP100001
  graph-connector graph GET external/connections/contosotasks/groups/payments
  graph-connector graph DELETE external/connections/contosotasks/items/TSP100001
Anything else the app may call, e.g. an identity API connector (see docs/cli.md):
  graph-connector graph POST identity/apiConnectors --data @api-connector.json`;

export const graphCommand = defineCommand({
  name: 'graph',
  summary: "Send a raw Graph request with the connector's identity",
  help,
  args: {
    allowPositionals: true,
    options: {
      data: { type: 'string', short: 'd' },
      header: { type: 'string', short: 'H', multiple: true },
      query: { type: 'string', short: 'q', multiple: true },
      'response-type': { type: 'string' },
      timeout: { type: 'string' },
      'max-retries': { type: 'string' },
      'retry-delay': { type: 'string' },
      'retry-on-all-errors': { type: 'boolean' },
      backoff: { type: 'string' },
      'api-version': { type: 'string' },
      debug: { type: 'boolean' },
      ...VERBOSE_FLAG,
    },
  },
  async run({ values, positionals }, io) {
    const [methodRaw, path, ...extra] = positionals;
    if (!methodRaw || !path || extra.length) throw new UsageError('expected exactly <METHOD> <PATH>');
    const method = methodRaw.toUpperCase() as Method;
    if (!METHODS.includes(method)) throw new UsageError(`method '${methodRaw}' is not one of ${METHODS.join(', ')}`);
    const responseType = values['response-type'] ?? 'json';
    if (!['json', 'text', 'binary'].includes(responseType)) {
      throw new UsageError(`--response-type '${responseType}' must be json, text or binary`);
    }
    const backoff = values.backoff ?? 'exponential';
    if (backoff !== 'exponential' && backoff !== 'fixed')
      throw new UsageError(`--backoff must be exponential or fixed`);
    const maxRetries =
      values['max-retries'] !== undefined
        ? parseWholeNumber('--max-retries', values['max-retries'], 0, Infinity)
        : undefined;
    const headers: Record<string, string> = {};
    for (const h of values.header ?? []) {
      const i = h.indexOf(':');
      if (i <= 0) throw new UsageError(`--header '${h}' must be name:value`);
      headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
    }
    let body: unknown;
    if (values.data !== undefined) {
      const text = values.data.startsWith('@') ? await readFile(values.data.slice(1), 'utf8') : values.data;
      try {
        body = JSON.parse(text);
      } catch (e) {
        throw new UsageError(`--data is not valid JSON: ${(e as Error).message}`);
      }
    }
    const env = loadEnvironment(io.env);
    const logger = commandLogger(io.stderr, { env: io.env, verbose: values.verbose });
    const secrets = createSecretProvider(io.env, { logger });
    const credential = createGraphCredential(env, secrets, { logger });
    const client = new GraphConnectorClient({
      baseUrl: env.graph.baseUrl,
      apiVersion: values['api-version'] ?? env.graph.apiVersion,
      credential,
      ...(env.graph.caCertPath ? { caCertPath: env.graph.caCertPath } : {}),
      ...(values.timeout ? { timeoutMs: parseDuration(values.timeout, '--timeout') } : {}),
      retry: {
        ...(maxRetries !== undefined ? { maxRetries } : {}),
        ...(values['retry-delay'] ? { baseDelayMs: parseDuration(values['retry-delay'], '--retry-delay') } : {}),
        ...(values['retry-on-all-errors'] ? { retryOn: 'all' as const } : {}),
        backoff,
      },
      onRetry: (e) =>
        io.stderr.write(`retry ${e.attempt}: ${e.status || 'network error'}, waiting ${e.delayMs} ms (${e.reason})\n`),
    });
    let target = path;
    if (values.query?.length) {
      const qs = values.query.map((q) => {
        const i = q.indexOf('=');
        if (i <= 0) throw new UsageError(`--query '${q}' must be name=value`);
        return `${queryEncode(q.slice(0, i))}=${queryEncode(q.slice(i + 1))}`;
      });
      target += (target.includes('?') ? '&' : '?') + qs.join('&');
    }
    if (values.debug) {
      io.stderr.write(
        `> ${method} ${/^https?:/.test(target) ? target : `${client.versionedBaseUrl}/${target.replace(/^\//, '')}`}\n`,
      );
      io.stderr.write(`> Authorization: Bearer [REDACTED] (${credential.description})\n`);
      for (const [k, v] of Object.entries(headers)) io.stderr.write(`> ${k}: ${redact(v)}\n`);
      if (body !== undefined) io.stderr.write(`> ${redact(JSON.stringify(redactValue(body)))}\n`);
    }
    let res: Response;
    try {
      res = await client.request(method, target, { headers, body, abortSignal: io.abortSignal });
    } catch (e) {
      if (e instanceof GraphError) {
        io.stderr.write(`${redact(e.message)}\n`);
        if (e.requestId) io.stderr.write(`request-id: ${e.requestId}\n`);
        if (e.body !== undefined) io.stdout.write(JSON.stringify(e.body, null, 2) + '\n');
        return 1;
      }
      throw e;
    }
    if (values.debug) {
      io.stderr.write(`< ${res.status} ${res.statusText}\n`);
      res.headers.forEach((v, k) => io.stderr.write(`< ${k}: ${v}\n`));
    }
    if (responseType === 'binary') {
      io.stdout.write(Buffer.from(await res.arrayBuffer()));
    } else {
      const text = await res.text();
      if (responseType === 'json' && text) {
        try {
          io.stdout.write(JSON.stringify(JSON.parse(text), null, 2) + '\n');
        } catch {
          io.stdout.write(text + '\n');
        }
      } else if (text) {
        io.stdout.write(text + '\n');
      } else {
        io.stdout.write(
          `${res.status} ${res.statusText}${res.headers.get('location') ? ` Location: ${res.headers.get('location')}` : ''}\n`,
        );
      }
    }
    return 0;
  },
});
