// The command line that runs THIS tessera CLI, for the hints it prints (`tessera up`'s "Try it" commands):
// `npx tessera` outside the repository would fetch an unrelated npm package of that name.
import { realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** POSIX-shell quoting, only when needed. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function real(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

/**
 * A PATH entry that npm puts in front for one command only (`npx`, `npm exec`, `npm run`, `npm start`): a package's
 * `node_modules/.bin` (npx's own cache `~/.npm/_npx/<hash>/node_modules/.bin` included) or npm's `node-gyp-bin`.
 * The shell the user types the printed hints into has none of them.
 */
function npmCommandDir(dir: string): boolean {
  return /[\\/]node_modules[\\/]\.bin[\\/]?$/.test(dir) || /[\\/]node-gyp-bin[\\/]?$/.test(dir);
}

/**
 * `tessera` when the first `tessera` on the user's PATH is this very script (a global install or a linked bin), else
 * the absolute Node binary and script: `'/usr/bin/node' '/home/me/tessera/dist/cli/tessera.js'`, which works from
 * any directory, whatever Node the shell would pick. The entries npm adds for the command that started this one are
 * skipped: under `npx tessera up` the first `tessera` is npx's link, which a second terminal does not have.
 */
export function selfCommand(execPath: string, scriptPath: string, pathEnv: string | undefined): string {
  const script = real(scriptPath) ?? scriptPath;
  for (const dir of (pathEnv ?? '').split(delimiter)) {
    if (dir === '' || npmCommandDir(dir)) continue;
    const onPath = real(join(dir, 'tessera'));
    if (onPath === null) continue;
    if (onPath === script) return 'tessera';
    break; // another `tessera` comes first on PATH: name this one explicitly
  }
  return `${shellQuote(execPath)} ${shellQuote(script)}`;
}
