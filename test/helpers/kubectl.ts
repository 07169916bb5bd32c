// Whether a kubectl client is installed: the tests that check what kubectl itself reads run only where it is.
import { execFileSync } from 'node:child_process';

export function hasKubectl(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}
