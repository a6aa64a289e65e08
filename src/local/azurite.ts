import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteHandle {
  child: ChildProcess;
  ports: { blob: number; queue: number; table: number };
  connectionString: string;
  stop(): Promise<void>;
}

export interface AzuriteOptions {
  /** Keep the data in this folder (survives restarts); default: in memory only. */
  location?: string;
  /** Fixed ports (default: any free port). */
  ports?: { blob?: number; queue?: number; table?: number };
}

/**
 * Start Azurite (blob, queue, table) as a child process, on free ports unless told otherwise. Azurite is a
 * development dependency: a clear error says so when it is not installed.
 */
export async function startAzurite(options: AzuriteOptions = {}): Promise<AzuriteHandle> {
  let bin: string;
  try {
    bin = require.resolve('azurite/dist/src/azurite.js');
  } catch {
    throw new Error(
      'Azurite is not installed (it is a development dependency). Run `npm install` in the project, or set ' +
        'AzureWebJobsStorage to a real storage account connection string.',
    );
  }
  const child = spawn(
    process.execPath,
    [
      bin,
      ...(options.location ? ['--location', options.location] : ['--inMemoryPersistence']),
      '--disableTelemetry',
      '--skipApiVersionCheck',
      '--silent',
      '--blobPort',
      String(options.ports?.blob ?? 0),
      '--queuePort',
      String(options.ports?.queue ?? 0),
      '--tablePort',
      String(options.ports?.table ?? 0),
      ...(options.location ? [] : ['--extentMemoryLimit', '512']),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const ports: Partial<Record<'blob' | 'queue' | 'table', number>> = {};
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`Azurite did not start in 20 s:\n${out}`)), 20_000);
    timer.unref();
    child.once('exit', (code) => reject(new Error(`Azurite exited with code ${code}:\n${out}`)));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      for (const m of out.matchAll(
        /Azurite (Blob|Queue|Table) service is successfully listening at https?:\/\/[^:]+:(\d+)/g,
      )) {
        ports[m[1]!.toLowerCase() as 'blob'] = Number(m[2]);
      }
      if (ports.blob && ports.queue && ports.table) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  });
  const p = ports as { blob: number; queue: number; table: number };
  const connectionString =
    `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};` +
    `BlobEndpoint=http://127.0.0.1:${p.blob}/${AZURITE_ACCOUNT};` +
    `QueueEndpoint=http://127.0.0.1:${p.queue}/${AZURITE_ACCOUNT};` +
    `TableEndpoint=http://127.0.0.1:${p.table}/${AZURITE_ACCOUNT};`;
  return {
    child,
    ports: p,
    connectionString,
    async stop() {
      if (child.exitCode !== null) return;
      child.removeAllListeners('exit');
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
