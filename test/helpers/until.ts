// Bounded polling for tests: wait until a condition holds, or fail naming what was awaited. Never sleeps longer
// than one poll past the moment the condition becomes true.
export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
