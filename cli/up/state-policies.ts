// The policy directory in `tessera up`'s state dir, made the run's spec exactly: the spec's files written, every other
// entry removed. A file an earlier run wrote and the spec no longer has (policiesDir dropped, a file removed) would
// otherwise stay in force (an outside audit: a re-run without policiesDir still allowed web -> api).
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function writeStatePolicies(dir: string, policies: Readonly<Record<string, string>>): Promise<void> {
  for (const name of await readdir(dir)) if (!Object.hasOwn(policies, name)) await rm(join(dir, name), { recursive: true, force: true });
  for (const [name, text] of Object.entries(policies)) await writeFile(join(dir, name), text);
}
