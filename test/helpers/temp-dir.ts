// A fresh temporary directory for each test of a describe block, removed after it: `const tmp = tempDirPerTest()`,
// then `tmp.dir` inside a test.
import { afterEach, beforeEach } from 'vitest';
import { makeTempDir } from './run.js';

export function tempDirPerTest(): { readonly dir: string } {
  let current: { dir: string; cleanup: () => Promise<void> } | undefined;
  beforeEach(async () => {
    current = await makeTempDir();
  });
  afterEach(async () => {
    await current?.cleanup();
    current = undefined;
  });
  return {
    get dir(): string {
      if (!current) throw new Error('tempDirPerTest: used outside a test');
      return current.dir;
    },
  };
}
