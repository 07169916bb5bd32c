// Fields of an admin request body as the admin routes read them, and times as they answer them: one set of rules
// (and error code) for every route.
import { TesseraError } from '../../../common/errors.js';

/** A time in ms as ISO 8601, or null. */
export const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

export function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '') throw new TesseraError('TESSERA_ERR_CP_ADMIN_BAD_REQUEST', `${key} must be a non-empty string`);
  return v;
}

export function requiredString(body: Record<string, unknown>, key: string): string {
  const v = optionalString(body, key);
  if (v === undefined) throw new TesseraError('TESSERA_ERR_CP_ADMIN_BAD_REQUEST', `${key} is required`);
  return v;
}
