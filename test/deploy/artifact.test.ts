/**
 * The deploy artifact runs as built: `npm run package`'s zip, unpacked into an empty folder under the OS temp folder
 * (so no module lookup can reach the repository's node_modules), with plain `node` and nothing but what the zip
 * carries. Every function entry point imports and registers; then one crawl runs from the artifact's own code
 * against Azurite and the Graph emulator. This test plays the Functions host: it reads the queues and hands each
 * message to the artifact's trigger handler in a child process, as the host's queue trigger does
 * (base64 message, JSON parsed, dequeueCount and id in the trigger metadata).
 */
import { fork, execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { QueueServiceClient, type QueueClient } from '@azure/storage-queue';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildPackage, buildPackageDefaults, type PackageResult } from '../../scripts/package.js';
import { ROOT, startStack, type Stack } from '../support/stack.js';

const run = promisify(execFile);

let base: string;
let unpacked: string;
let built: PackageResult;
const functionNames = readdirSync(path.join(ROOT, 'functions'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3))
  .sort();

/** Only what a Functions host gives a worker: no NODE_PATH, no NODE_OPTIONS, none of this test's variables. */
const bareEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? '', ...extra });

beforeAll(async () => {
  base = mkdtempSync(path.join(tmpdir(), 'gc-artifact-'));
  built = await buildPackage({ root: ROOT, outDir: path.join(base, 'built'), zip: path.join(base, 'app.zip') });
  unpacked = path.join(base, 'wwwroot');
  mkdirSync(unpacked);
  for (const [name, bytes] of Object.entries(unzipSync(new Uint8Array(readFileSync(built.zip!))))) {
    if (name.endsWith('/')) continue;
    mkdirSync(path.dirname(path.join(unpacked, name)), { recursive: true });
    writeFileSync(path.join(unpacked, name), bytes);
  }
}, 300_000);

afterAll(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('the deploy artifact', () => {
  it('carries the bundles, host.json, a package.json naming them, the definition and its files, and nothing else', () => {
    expect(readdirSync(unpacked).sort()).toEqual([
      'connector.json',
      'functions',
      'host.json',
      'lib',
      'node_modules',
      'package.json',
      'samples',
    ]);
    const manifest = JSON.parse(readFileSync(path.join(unpacked, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ type: 'module', main: 'functions/*.js' });
    expect(manifest).not.toHaveProperty('devDependencies');
    expect(manifest).not.toHaveProperty('scripts');
    expect(readdirSync(path.join(unpacked, 'functions')).sort()).toEqual(functionNames.map((n) => `${n}.js`));
    expect(readdirSync(path.join(unpacked, 'lib'))).toContain('sandbox-worker.js');
    // the sample's source, groups, directory and attachments: everything connector.json reads from disk
    for (const f of ['tasks.jsonl', 'teams.json', 'directory.json', 'attachments/TSP100000-customs-checklist.pdf'])
      expect(readFileSync(path.join(unpacked, 'samples/contoso-tasks', f)).length, f).toBeGreaterThan(0);
    const modules = readdirSync(path.join(unpacked, 'node_modules'));
    // no devDependency (the emulator's selfsigned, Azurite, the toolchain) and nothing the bundles inline
    for (const p of ['selfsigned', 'azurite', 'typescript', 'vitest', 'esbuild', '@azure', 'undici', 'htmlparser2'])
      expect(modules, p).not.toContain(p);
    expect(modules).toEqual(expect.arrayContaining(['pdfjs-dist', 'node-forge', 'tesseract.js']));
    // no TypeScript sources, tests or repository files
    const all = walk(unpacked).map((f) => path.relative(unpacked, f));
    expect(all.filter((f) => !f.startsWith('node_modules') && /\.(ts|map)$/.test(f))).toEqual([]);
  });

  it('azure.yaml deploys this folder as built: the package hook, its dist folder, no remote build', () => {
    const yaml = readFileSync(path.join(ROOT, 'azure.yaml'), 'utf8');
    const api = /^ {2}api:\n((?: {4,}.*\n?)*)/m.exec(yaml)?.[1] ?? '';
    expect(api).toMatch(/^ {4}dist: dist\/package$/m);
    expect(api).toMatch(/^ {4}remoteBuild: false$/m);
    expect(api).toMatch(/^ {4}hooks:\n {6}prepackage:\n(?: {8,}.*\n)*? {10}run: npm run package$/m);
    const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(manifest.scripts.package).toContain('node dist/scripts/package.js');
    expect(manifest.scripts.package).toContain('npm run package:app --if-present');
    expect(path.relative(ROOT, buildPackageDefaults().outDir)).toBe(path.join('dist', 'package'));
  });

  it('imports every function entry point with plain node, and each registers its trigger', async () => {
    const script = String.raw`
      import Module, { register } from 'node:module';
      import { MessageChannel } from 'node:worker_threads';
      const { port1, port2 } = new MessageChannel();
      const resolved = new Set();
      port1.on('message', (u) => resolved.add(u));
      port1.unref();
      register('data:text/javascript,' + encodeURIComponent(
        'let port; export function initialize(d) { port = d.port; }' +
        'export async function resolve(s, c, next) { const r = await next(s, c); port.postMessage(r.url); return r; }'),
        { data: { port: port2 }, transferList: [port2] });
      const registered = [];
      const core = { setProgrammingModel() {}, getProgrammingModel() {}, log() {}, registerHook() { return { dispose() {} }; },
        registerFunction(metadata) { registered.push([metadata.name, Object.values(metadata.bindings).find((b) => b.direction === 'in' && b.type.endsWith('Trigger')).type]); return { dispose() {} }; } };
      const load = Module._load;
      Module._load = function (request, ...rest) { return request === '@azure/functions-core' ? core : load.call(this, request, ...rest); };
      for (const f of JSON.parse(process.env.ENTRIES)) await import(f);
      await new Promise((r) => setTimeout(r, 50)); // the hook reports through a port
      const files = [...resolved, ...Object.keys(Module._cache)].filter((u) => !u.startsWith('node:'));
      process.stdout.write(JSON.stringify({ registered, files }));
      process.exit(0);
    `;
    const entries = functionNames.map((n) => pathToFileURL(path.join(unpacked, 'functions', `${n}.js`)).href);
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: unpacked,
      env: bareEnv({ ENTRIES: JSON.stringify(entries) }),
      timeout: 60_000,
    });
    const { registered, files } = JSON.parse(stdout) as { registered: [string, string][]; files: string[] };
    expect(registered.map(([n]) => n).sort()).toEqual(functionNames);
    expect(Object.fromEntries(registered)).toMatchObject({
      crawlTimer: 'timerTrigger',
      ingest: 'queueTrigger',
      crawlControl: 'queueTrigger',
      status: 'httpTrigger',
    });
    // every module the loader resolved came from the artifact (the bundles and their shared chunks)
    const inArtifact = (f: string) => (f.startsWith('file:') ? new URL(f).pathname : f).startsWith(unpacked + path.sep);
    expect(files.length).toBeGreaterThan(functionNames.length);
    expect(files.filter((f) => !inArtifact(f))).toEqual([]);
  });

  describe('one crawl from the artifact against Azurite and the emulator', () => {
    let stack: Stack;
    let host: ChildProcess;
    beforeAll(async () => {
      // The stack provisions the connection (the definition is the same file) and names unique queues and tables.
      stack = await startStack();
    }, 120_000);
    afterAll(async () => {
      host?.kill();
      await stack?.close();
    });

    it('crawls the sample: every item in Graph, attachments extracted in the sandbox worker (PDF, DOCX, OCR)', async () => {
      host = startHost({ ...stack.env, CONNECTOR_CONFIG: 'connector.json', LOG_LEVEL: 'warn' });
      const service = QueueServiceClient.fromConnectionString(inject('storageConnectionString'));
      const control = service.getQueueClient(stack.env.CRAWL_QUEUE!);
      const items = service.getQueueClient(stack.env.ITEMS_QUEUE!);

      await invoke(host, 'crawlTimer', { isPastDue: false });
      let crawlId: string | undefined;
      const deadline = Date.now() + 240_000;
      let job;
      for (;;) {
        if (Date.now() > deadline)
          throw new Error(`the crawl did not finish in time: ${JSON.stringify(job)}; failures: ${failures.join('; ')}`);
        const handled = await Promise.all([
          drain(control, 'crawlControl', host, (m) => {
            crawlId ??= (m as { crawlId?: string }).crawlId;
          }),
          drain(items, 'ingest', host),
        ]);
        if (crawlId) {
          job = await stack.rt.pipeline.state.jobs.get(stack.rt.definition.connection.id, crawlId);
          if (job && ['completed', 'failed', 'cancelled'].includes(job.status)) break;
        }
        if (!handled.some(Boolean)) await new Promise((r) => setTimeout(r, 200));
      }
      expect(job.status, failures.join('; ')).toBe('completed');
      // nothing failed in the artifact: no dead letter (an extraction that cannot load its reader would be one)
      const dead: { itemId: string; code: string; message?: string }[] = [];
      for await (const d of stack.rt.pipeline.state.deadLetters.list(stack.rt.pipeline.connectionId, { crawlId }))
        dead.push(d as unknown as { itemId: string; code: string; message?: string });
      expect(dead).toEqual([]);
      const records = readFileSync(path.join(unpacked, 'samples/contoso-tasks/tasks.jsonl'), 'utf8').trim().split('\n');
      expect(job.counts.enumerated).toBe(records.length);
      expect(job.counts.ingested).toBeGreaterThan(records.length * 0.9);
      expect(job.counts.ingested + job.counts.rejected + job.counts.deadLettered).toBe(records.length);

      const stored = await stack.admin<{ value: { id: string }[] }>(
        `connections/${stack.rt.definition.connection.id}/items`,
      );
      expect(stored.value.length).toBe(job.counts.ingested);
      const item = await stack.admin<{ content: { value: string } }>(
        `connections/${stack.rt.definition.connection.id}/items/TSP100000`,
      );
      expect(item.content.value).toContain('Customs checklist for container MSCU8162777'); // pdfjs, node_modules
      expect(item.content.value).toContain('adds about 26 minutes per stop'); // the DOCX reader, bundled
      expect(item.content.value.toLowerCase()).toContain('receipt'); // OCR: tesseract.js from node_modules
    }, 300_000);
  });
});

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

/**
 * The artifact's trigger handlers in a child process started in the unpacked folder: each message names a function
 * file and its input; the child calls that file's exported handler with an invocation context and answers.
 */
function startHost(env: Record<string, string>): ChildProcess {
  const script = path.join(base, 'host-shim.mjs');
  writeFileSync(
    script,
    String.raw`
      import Module from 'node:module';
      import { pathToFileURL } from 'node:url';
      import path from 'node:path';
      const core = { setProgrammingModel() {}, getProgrammingModel() {}, log() {}, registerHook() { return { dispose() {} }; },
        registerFunction() { return { dispose() {} }; } };
      const load = Module._load;
      Module._load = function (request, ...rest) { return request === '@azure/functions-core' ? core : load.call(this, request, ...rest); };
      let next = 0;
      process.on('message', async ({ id, fn, input, triggerMetadata }) => {
        try {
          const mod = await import(pathToFileURL(path.join(process.cwd(), 'functions', fn + '.js')).href);
          const context = { invocationId: 'inv-' + ++next, functionName: fn, triggerMetadata };
          await mod[fn].handler(input, context);
          process.send({ id, ok: true });
        } catch (err) {
          process.send({ id, ok: false, error: String(err && err.stack || err) });
        }
      });
      process.send({ ready: true });
    `,
  );
  return fork(script, [], {
    cwd: unpacked,
    env: bareEnv(env),
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

let nextCall = 0;
/** Invocations that failed (their messages were left to reappear). */
const failures: string[] = [];
const pending = new Map<number, { resolve: () => void; reject: (err: Error) => void; fn: string }>();

function invoke(host: ChildProcess, fn: string, input: unknown, triggerMetadata: Record<string, unknown> = {}) {
  if (!host.listenerCount('message'))
    host.on('message', (m: { id?: number; ok?: boolean; error?: string }) => {
      const call = m.id === undefined ? undefined : pending.get(m.id);
      if (!call) return;
      pending.delete(m.id!);
      if (m.ok) call.resolve();
      else call.reject(new Error(`${call.fn} failed in the artifact: ${m.error}`));
    });
  const id = ++nextCall;
  return new Promise<void>((resolve, reject) => {
    pending.set(id, { resolve, reject, fn });
    host.send({ id, fn, input, triggerMetadata });
  });
}

/** One receive of up to 16 messages, each handed to the artifact's handler; deleted when it succeeded. */
async function drain(
  queue: QueueClient,
  fn: string,
  host: ChildProcess,
  seen: (message: unknown) => void = () => {},
): Promise<number> {
  const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 16, visibilityTimeout: 5 });
  await Promise.all(
    receivedMessageItems.map(async (m) => {
      const text = Buffer.from(m.messageText, 'base64').toString('utf8');
      let input: unknown = text;
      try {
        input = JSON.parse(text);
      } catch {
        // not JSON: the host passes the string
      }
      seen(input);
      try {
        await invoke(host, fn, input, { dequeueCount: m.dequeueCount, id: m.messageId });
      } catch (err) {
        // as the host does: a failed invocation leaves the message to reappear after its visibility timeout
        failures.push((err as Error).message);
        return;
      }
      await queue.deleteMessage(m.messageId, m.popReceipt);
    }),
  );
  return receivedMessageItems.length;
}
