/** Setting process.env for a whole test file (vitest's forks pool gives each file its own process). */

/** Sets `vars` in process.env; the returned function puts back what was there before. */
export function setProcessEnv(vars: Record<string, string>): () => void {
  const saved = Object.entries(vars).map(([name, value]) => {
    const before = process.env[name];
    process.env[name] = value;
    return [name, before] as const;
  });
  return () => {
    for (const [name, before] of saved) {
      if (before === undefined) delete process.env[name];
      else process.env[name] = before;
    }
  };
}
