// Reads this build's facts: the version from Tessera's own package.json (the nearest one named "tessera" above
// this module: the repository's from the sources and the build, /app/package.json in the image), Node and OpenSSL
// from the running process.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildInfo } from '../common/build-info.js';

function packageVersion(from: string): string {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'tessera' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // no (readable) package.json here: keep walking up
    }
    const up = dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}

export function readBuildInfo(): BuildInfo {
  return Object.freeze({ version: packageVersion(import.meta.url), node: process.versions.node, openssl: process.versions.openssl ?? 'none' });
}
