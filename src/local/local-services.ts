/**
 * The local state `graph-connector run` leaves in `.local/` (Azurite's data in `azurite/`, the emulator's state and
 * certificate in `emulator/`), and what the inspection commands (`status`, `deadletters`, `search`) need to read
 * it after the run has ended: the Azurite and emulator that `run --keep` left running (recorded in `kept.json`),
 * or — when nothing is reachable — an Azurite on the persisted data and an emulator on its persisted state,
 * started for the command and stopped when it ends. Settings in the environment (AzureWebJobsStorage,
 * GRAPH_BASE_URL) always win: real endpoints are never replaced by local ones.
 */
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { startEmulator, type EmulatorHandle, type EmulatorInfo } from '../emulator/index.js';
import { ConnectorError } from '../core/errors.js';
import { startAzurite, type AzuriteHandle } from './azurite.js';
import { graphEnvForEmulator } from './emulator-client.js';

/** What `run --keep` records about the services it leaves running, in `<stateDir>/kept.json`. */
export interface KeptServices {
  /** The process that keeps them (the `run --keep` still in the foreground). */
  pid: number;
  since: string;
  storage?: { connectionString: string; ports: { blob: number; queue: number; table: number }; location: string };
  graph?: Pick<
    EmulatorInfo,
    'baseUrl' | 'authorityHost' | 'tenantId' | 'clientId' | 'clientSecret' | 'caCertPath' | 'adminUrl'
  >;
}

/**
 * No local state to inspect and nothing configured (code `InvalidUsage`, so the CLI exits 2 like for any usage or
 * configuration error): the message says what to run or set.
 */
export class LocalStateError extends ConnectorError {
  override name = 'LocalStateError';
  constructor(message: string) {
    super(message, { code: 'InvalidUsage' });
  }
}

export const keptFile = (stateDir: string) => join(stateDir, 'kept.json');
export const azuriteDir = (stateDir: string) => join(stateDir, 'azurite');
export const emulatorDir = (stateDir: string) => join(stateDir, 'emulator');
export const hasEmulatorState = (stateDir: string) => existsSync(join(emulatorDir(stateDir), 'emulator-state.json'));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port within a second. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The services a `run --keep` left running, when its process is alive and they still answer; else undefined. */
export async function readKeptServices(stateDir: string): Promise<KeptServices | undefined> {
  let kept: KeptServices;
  try {
    kept = JSON.parse(await readFile(keptFile(stateDir), 'utf8')) as KeptServices;
  } catch {
    return undefined;
  }
  if (!Number.isInteger(kept.pid) || !alive(kept.pid)) return undefined;
  if (kept.storage && !(await listening(kept.storage.ports.queue))) return undefined;
  if (kept.graph && !(await listening(Number(new URL(kept.graph.baseUrl).port)))) return undefined;
  return kept;
}

export async function writeKeptServices(stateDir: string, kept: KeptServices): Promise<void> {
  await writeFile(keptFile(stateDir), JSON.stringify(kept, null, 2) + '\n', { mode: 0o600 });
}

export async function removeKeptServices(stateDir: string): Promise<void> {
  await rm(keptFile(stateDir), { force: true });
}

/** The environment lines that reach kept services from another shell (`export NAME='value'`). */
export function exportLines(kept: KeptServices): string[] {
  const env: Record<string, string> = {};
  if (kept.storage) env.AzureWebJobsStorage = kept.storage.connectionString;
  if (kept.graph) {
    Object.assign(env, graphEnvForEmulator(kept.graph as EmulatorInfo));
    // Other Node tools (and the connector without GRAPH_CA_CERT_PATH) trust the emulator through this.
    if (kept.graph.caCertPath) env.NODE_EXTRA_CA_CERTS = kept.graph.caCertPath;
  }
  return Object.entries(env).map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'`);
}

export interface LocalServices {
  /** The environment with AzureWebJobsStorage / GRAPH_* filled in where they were missing. */
  env: NodeJS.ProcessEnv;
  /** One line per service used: what it is and where it came from. */
  notes: string[];
  /** Stop what was started for this command (never kept or configured services). */
  close(): Promise<void>;
}

export interface LocalServicesOptions {
  env: NodeJS.ProcessEnv;
  /** `.local` of `graph-connector run` (absolute). */
  stateDir: string;
  /** The command reads or writes storage (the ledger, the queues, the dead letters). */
  storage?: boolean;
  /** The command needs Graph settings (a runtime) — and Graph itself when it sends or searches. */
  graph?: boolean;
  /** The command's name, for the error when there is nothing to use. */
  command: string;
}

/**
 * Fill in the storage and Graph settings a command needs from the local state of `graph-connector run`: the
 * services `run --keep` keeps, else an Azurite on `.local/azurite` and an emulator on `.local/emulator` started
 * now. A setting already in the environment is left alone. With no setting and no local state, a
 * {@link LocalStateError} says what to do.
 */
export async function localServices(options: LocalServicesOptions): Promise<LocalServices> {
  const env: NodeJS.ProcessEnv = { ...options.env };
  const notes: string[] = [];
  const { stateDir } = options;
  const wantsStorage =
    options.storage === true && !env.AzureWebJobsStorage && !env.AzureWebJobsStorage__queueServiceUri;
  const wantsGraph = options.graph === true && !env.GRAPH_BASE_URL;
  if (!wantsStorage && !wantsGraph) return { env, notes, close: async () => undefined };

  const kept = await readKeptServices(stateDir);
  let azurite: AzuriteHandle | undefined;
  let emulator: EmulatorHandle | undefined;
  const close = async () => {
    await emulator?.close().catch(() => undefined);
    await azurite?.stop().catch(() => undefined);
  };
  try {
    if (wantsStorage) {
      if (kept?.storage) {
        env.AzureWebJobsStorage = kept.storage.connectionString;
        notes.push(
          `storage   the Azurite kept by graph-connector run --keep (pid ${kept.pid}, queue port ${kept.storage.ports.queue})`,
        );
      } else if (existsSync(azuriteDir(stateDir))) {
        azurite = await startAzurite({ location: azuriteDir(stateDir) });
        env.AzureWebJobsStorage = azurite.connectionString;
        notes.push(
          `storage   Azurite on the data of graph-connector run (${azuriteDir(stateDir)}), started for this command`,
        );
      } else {
        throw new LocalStateError(
          `${options.command} reads storage, but AzureWebJobsStorage is not set and there is no local state in ${stateDir}: run \`graph-connector run\` first ` +
            `(it keeps its storage in ${azuriteDir(stateDir)}), pass --state-dir <dir> if it used another folder, or ` +
            `set AzureWebJobsStorage to your storage account's connection string`,
        );
      }
    }
    if (wantsGraph) {
      if (kept?.graph) {
        Object.assign(env, graphEnvForEmulator(kept.graph as EmulatorInfo));
        notes.push(`graph     the emulator kept by graph-connector run --keep at ${kept.graph.baseUrl}`);
      } else if (hasEmulatorState(stateDir)) {
        emulator = await startEmulator({ stateDir: emulatorDir(stateDir), log: () => {} });
        Object.assign(env, graphEnvForEmulator(emulator.info));
        notes.push(
          `graph     the emulator on the state of graph-connector run (${emulatorDir(stateDir)}) at ${emulator.info.baseUrl}, started for this command`,
        );
      }
      // Neither: the GRAPH_* settings stay as they are, and the runtime's validation names what is missing.
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { env, notes, close };
}
