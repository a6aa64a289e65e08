/**
 * The azd postprovision/postdeploy hook: it prints the admin-consent URL, checks consent through the app role
 * assignments (with the az CLI), and never fails the deployment. Run here with a stand-in `az` on PATH that answers
 * as the CLI does for a service principal with one of the two roles, and with no `az` at all.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/stack.js';

const TENANT = '72f988bf-0000-4000-8000-000000000001';
const CLIENT = '9a1c2b3d-4e5f-4a6b-8c7d-1e2f3a4b5c6d';
const bin = mkdtempSync(join(tmpdir(), 'gc-hook-'));
for (const tool of ['sh', 'printf', 'cat']) {
  const which = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
  if (which.startsWith('/')) symlinkSync(which, join(bin, tool));
}
afterAll(() => rmSync(bin, { recursive: true, force: true }));

function run(env: Record<string, string>, args: string[] = []) {
  return spawnSync('sh', [join(ROOT, 'scripts', 'postprovision.sh'), ...args], {
    cwd: ROOT,
    env: { PATH: bin, ...env },
    encoding: 'utf8',
  });
}

describe('azd hook: admin consent, then provisioning', () => {
  it('is wired in azure.yaml for postprovision and postdeploy, never failing the deployment', () => {
    const yaml = readFileSync(join(ROOT, 'azure.yaml'), 'utf8');
    expect(yaml).toMatch(/hooks:\s+postprovision:[\s\S]*run: \.\/scripts\/postprovision\.sh\s/);
    expect(yaml).toMatch(/postdeploy:[\s\S]*run: \.\/scripts\/postprovision\.sh --deployed/);
    expect(yaml.match(/continueOnError: true/g)).toHaveLength(2);
  });

  it('prints the consent URL and what to do when az is missing; exit code 0', () => {
    const r = run({ AZURE_TENANT_ID: TENANT, GRAPH_CLIENT_ID: CLIENT });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`https://login.microsoftonline.com/${TENANT}/adminconsent?client_id=${CLIENT}`);
    expect(r.stdout).toMatch(/az\) is not installed/);
  });

  it('reports missing consent when only one of the two roles is granted, and does not provision', () => {
    writeFileSync(
      join(bin, 'az'),
      `#!/bin/sh\ncase "$*" in\n  "ad sp show"*) echo sp-object-id ;;\n  rest*) echo f431331c-49a6-499f-be1c-62af19c34a9d ;;\n  *) echo "unexpected az $*" >&2; exit 3 ;;\nesac\n`,
    );
    chmodSync(join(bin, 'az'), 0o755);
    const r = run({ AZURE_TENANT_ID: TENANT, GRAPH_CLIENT_ID: CLIENT, GRAPH_CREDENTIAL: 'clientSecret' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/consent is missing/);
    expect(r.stdout).not.toMatch(/provisioning the connection/);
  });

  it('says nothing can be consented before the app exists', () => {
    const r = run({ AZURE_TENANT_ID: TENANT });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/GRAPH_CLIENT_ID or AZURE_TENANT_ID is not set/);
  });
});
