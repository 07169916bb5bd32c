// Fields of an admin request body as the admin routes read them, and times as they answer them: one set of rules
// (and error code) for every route. Values are taken as JSON typed them, never coerced: "1e3", true or [5] is not a
// number of milliseconds, and an object is not a string.
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

const bad = (message: string) => new TesseraError('TESSERA_ERR_CP_ADMIN_BAD_REQUEST', message);

/** A string field that may be absent (then `fallback`); present, it must be a string (it may be empty). */
export function stringField(body: Record<string, unknown>, key: string, fallback = ''): string {
  const v = body[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string') throw bad(`${key} must be a string`);
  return v;
}

/** A list of strings that may be absent (then empty). */
export function stringList(body: Record<string, unknown>, key: string): string[] {
  const v = body[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(`${key} must be a list of strings`);
  return v as string[];
}

/** A positive whole number of milliseconds, as a JSON number; absent: undefined. */
export function optionalMs(body: Record<string, unknown>, key: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw bad(`${key} must be a positive whole number of milliseconds`);
  return v;
}

/** The same from a query string: digits only. */
export function queryMs(query: URLSearchParams, key: string): number | undefined {
  const v = query.get(key);
  if (v === null || v === '') return undefined;
  const n = /^\d{1,15}$/.test(v) ? Number(v) : Number.NaN;
  if (!(n > 0)) throw bad(`${key} must be a positive whole number of milliseconds`);
  return n;
}
