import { resolve } from 'node:path';
import { defineCommand } from '../args.js';
import { UsageError } from '../command.js';
import { startEmulator, type EmulatorOptions } from '../../emulator/index.js';
import { parseWindowSpec } from '../../emulator/throttling.js';

const help = `graph-connector emulator — run the local Microsoft Graph connectors API emulator

Usage: graph-connector emulator [options]

Prints ONE JSON line (baseUrl, authorityHost, tenantId, clientId, clientSecret, caCertPath,
managedIdentityEndpoint, managedIdentityHeader, managedIdentityClientId, adminUrl, userPassword, proxyUrl)
on stdout, then human logs on stderr. Stops cleanly on SIGINT/SIGTERM.

Options:
  --port N             port on 127.0.0.1 (default 0 = any free port)
  --http               plain HTTP instead of HTTPS (auth via @azure/identity needs HTTPS)
  --state-dir DIR      persist the whole state and the TLS certificate in DIR; reload on start
  --latency-ms N       added to every Graph response (default 0)
  --rate-limit N       item PUT/DELETE per second per connection (default 0 = unlimited)
  --group-rate-limit N group/member writes per second per connection (default 0 = unlimited)
  --delete-delay-ms N  how long a connection's deletion runs after the 202 (default 2000; 0 = at once)
  --max-concurrency N  concurrent requests per app per connection before 429 (default 25)
  --fault-rate F       0..1 probability of a random fault per Graph call (default 0)
  --seed N             seed for every random choice (faults, ids)
  --schema-delay-ms N  how long a schema operation stays inprogress (default 1000)
  --directory FILE     users and Entra groups for the ACL search and delegated sign-in (JSON)
  --retry-after MIN-MAX  Retry-After seconds of injected throttling drawn from this range (e.g. 1-120)
  --throttle-window START+DURATION[:STATUS[:SHARE]][@CONNECTION]
                       a throttling window (429) or 503 storm, timed from the start, e.g. 30s+60s,
                       10s+20s:503:0.5 or 0s+60s@contosotasks (repeatable; more at run time: POST /_emulator/throttle)
  --proxy-port N       also be an HTTPS proxy on 127.0.0.1:N (0 = any free port) that answers for
                       graph.microsoft.com and login.microsoftonline.com (TLS from the emulator's CA, caCertPath)
                       and refuses every other host: run unmodified clients with https_proxy=<proxyUrl> and
                       NODE_EXTRA_CA_CERTS=<caCertPath>
  --app APPID:SECRET@TENANT  register this app (client secret; roles: the two OwnedBy permissions) and, on a fresh
                       state, use TENANT as the tenant id (repeatable; all must name the same tenant)
  --tenant-id GUID     the tenant id of a fresh state

Without --state-dir the certificate is still kept (and reused) in .local/emulator under the current folder.
Admin API: {adminUrl}/state, /requests, /faults, /apps, /directory, /search … (see docs/emulator.md).`;

function num(name: string, raw: string | undefined, min: number, max = Infinity): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v < min || v > max)
    throw new UsageError(`--${name} must be a number between ${min} and ${max}; got '${raw}'.`);
  return v;
}

export const emulatorCommand = defineCommand({
  name: 'emulator',
  summary: 'Run the local Microsoft Graph connectors API emulator (plus token endpoints)',
  help,
  args: {
    options: {
      port: { type: 'string' },
      http: { type: 'boolean' },
      'state-dir': { type: 'string' },
      'latency-ms': { type: 'string' },
      'rate-limit': { type: 'string' },
      'max-concurrency': { type: 'string' },
      'group-rate-limit': { type: 'string' },
      'delete-delay-ms': { type: 'string' },
      'fault-rate': { type: 'string' },
      seed: { type: 'string' },
      'schema-delay-ms': { type: 'string' },
      directory: { type: 'string' },
      'retry-after': { type: 'string' },
      'throttle-window': { type: 'string', multiple: true },
      'proxy-port': { type: 'string' },
      app: { type: 'string', multiple: true },
      'tenant-id': { type: 'string' },
    },
  },
  async run({ values }, io) {
    const stateDir = values['state-dir'] ? resolve(values['state-dir']) : undefined;
    let retryAfterRange: [number, number] | undefined;
    if (values['retry-after'] !== undefined) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(values['retry-after'].trim());
      const lo = m ? Number(m[1]) : NaN;
      const hi = m ? Number(m[2] ?? m[1]) : NaN;
      if (!m || lo > hi)
        throw new UsageError(
          `--retry-after must be MIN-MAX seconds (e.g. 1-120) or one number; got '${values['retry-after']}'.`,
        );
      retryAfterRange = [lo, hi];
    }
    let throttleWindows: EmulatorOptions['throttleWindows'];
    try {
      throttleWindows = (values['throttle-window'] ?? []).map(
        (w) => parseWindowSpec(w) as NonNullable<EmulatorOptions['throttleWindows']>[number],
      );
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const apps: NonNullable<EmulatorOptions['apps']> = [];
    let tenantId = values['tenant-id'];
    if (tenantId !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(tenantId))
      throw new UsageError(`--tenant-id must be a tenant id (a GUID); got '${tenantId}'.`);
    for (const spec of values.app ?? []) {
      const m = /^([0-9a-fA-F-]{36}):(.+)@([0-9a-fA-F-]{36})$/.exec(spec);
      if (!m)
        throw new UsageError(
          `--app must be APPID:SECRET@TENANTID (the app's client id, a client secret, the tenant id; GUIDs); got '${spec.replace(/:[^@]*/, ':…')}'.`,
        );
      if (tenantId && tenantId.toLowerCase() !== m[3]!.toLowerCase())
        throw new UsageError(`--app names tenant ${m[3]} but the emulator's tenant is ${tenantId}; use one tenant.`);
      tenantId = m[3]!;
      apps.push({ clientId: m[1]!, secret: m[2]! });
    }
    const options: EmulatorOptions = {
      port: num('port', values.port, 0, 65535),
      http: values.http ?? false,
      stateDir,
      tlsDir: stateDir ?? resolve('.local/emulator'),
      latencyMs: num('latency-ms', values['latency-ms'], 0),
      rateLimit: num('rate-limit', values['rate-limit'], 0),
      maxConcurrency: num('max-concurrency', values['max-concurrency'], 0),
      groupRateLimit: num('group-rate-limit', values['group-rate-limit'], 0),
      deleteDelayMs: num('delete-delay-ms', values['delete-delay-ms'], 0),
      faultRate: num('fault-rate', values['fault-rate'], 0, 1),
      seed: num('seed', values.seed, 0),
      schemaDelayMs: num('schema-delay-ms', values['schema-delay-ms'], 0),
      directory: values.directory ? resolve(values.directory) : undefined,
      ...(retryAfterRange ? { retryAfterRange } : {}),
      ...(throttleWindows.length ? { throttleWindows } : {}),
      ...(values['proxy-port'] !== undefined ? { proxyPort: num('proxy-port', values['proxy-port'], 0, 65535) } : {}),
      ...(apps.length ? { apps } : {}),
      ...(tenantId ? { tenantId } : {}),
      log: (line) => io.stderr.write(line + '\n'),
    };
    const handle = await startEmulator(options);
    io.stdout.write(JSON.stringify(handle.info) + '\n');
    await new Promise<void>((resolveWait) => {
      if (io.abortSignal.aborted) return resolveWait();
      io.abortSignal.addEventListener('abort', () => resolveWait(), { once: true });
    });
    io.stderr.write('emulator: stopping\n');
    await handle.close();
    return 0;
  },
});
