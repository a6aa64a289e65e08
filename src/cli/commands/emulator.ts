import { resolve } from 'node:path';
import { defineCommand } from '../args.js';
import { UsageError } from '../command.js';
import { startEmulator, type EmulatorOptions } from '../../emulator/index.js';

const help = `graph-connector emulator — run the local Microsoft Graph connectors API emulator

Usage: graph-connector emulator [options]

Prints ONE JSON line (baseUrl, authorityHost, tenantId, clientId, clientSecret, caCertPath,
managedIdentityEndpoint, managedIdentityHeader, managedIdentityClientId, adminUrl) on stdout,
then human logs on stderr. Stops cleanly on SIGINT/SIGTERM.

Options:
  --port N             port on 127.0.0.1 (default 0 = any free port)
  --http               plain HTTP instead of HTTPS (auth via @azure/identity needs HTTPS)
  --state-dir DIR      persist the whole state and the TLS certificate in DIR; reload on start
  --latency-ms N       added to every Graph response (default 0)
  --rate-limit N       item PUT/DELETE per second per connection (default 0 = unlimited)
  --group-rate-limit N group/member writes per second per connection (default 0 = unlimited)
  --delete-delay-ms N  a deleted connection stays visible this long after the 202 (default 0)
  --max-concurrency N  concurrent requests per app per connection before 429 (default 25)
  --fault-rate F       0..1 probability of a random fault per Graph call (default 0)
  --seed N             seed for every random choice (faults, ids)
  --schema-delay-ms N  how long a schema operation stays inprogress (default 1000)
  --directory FILE     users and Entra groups for the ACL search (JSON)

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
    },
  },
  async run({ values }, io) {
    const stateDir = values['state-dir'] ? resolve(values['state-dir']) : undefined;
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
