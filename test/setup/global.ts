import type { TestProject } from 'vitest/node';
import { startAzurite } from '../../src/local/azurite.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Connection string of the Azurite instance shared by this test run (blob, queue, table). */
    storageConnectionString: string;
  }
}

/** One Azurite for the whole run; tests isolate themselves with unique queue/table names. */
export default async function setup(project: TestProject) {
  const azurite = await startAzurite();
  project.provide('storageConnectionString', azurite.connectionString);
  return async () => {
    await azurite.stop();
  };
}
