/**
 * Headless Chromium for the page tests: the machine's own browser (Debian's `chromium` package, which .ci/run
 * installs), driven by playwright-core — which downloads no browser of its own. CHROMIUM_PATH names another binary.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

const NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

/** The Chromium binary to use, or undefined when there is none. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [
    ...(env.CHROMIUM_PATH ? [env.CHROMIUM_PATH] : []),
    ...(env.PATH ?? '').split(delimiter).flatMap((dir) => (dir ? NAMES.map((n) => join(dir, n)) : [])),
  ];
  return candidates.find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export const NO_CHROMIUM =
  'no Chromium binary found (looked for CHROMIUM_PATH, then chromium, chromium-browser, google-chrome on PATH): ' +
  'install it with `apt-get install -y chromium` (.ci/run does) to run the browser tests';

export async function launchChromium(executablePath: string): Promise<Browser> {
  // --no-sandbox: CI runs as root, where Chromium refuses its sandbox.
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
}
