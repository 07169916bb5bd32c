// The operator's name for audit lines of admin commands (break-glass, revoke): the local user, or "unknown".
import { userInfo } from 'node:os';

export function whoAmI(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
