// Shape checks for what admin.sock answers, before a command prints it: an answer of the wrong shape (a missing
// field, an object where a string belongs) is a coded TESSERA_ERR_CP_ADMIN_BAD_ANSWER naming the field, never a
// TypeError from deep in the formatting, nor "[object Object]" printed with exit 0. Strings are what a terminal
// prints: no control characters (an ESC sequence cleared the screen and forged a ban row) and a bound on length.
import { TesseraError } from '../common/errors.js';
import { hasControlCharacters } from '../common/text/control-characters.js';

/** Throws a message naming what is wrong at `at`; returns nothing. */
export type Shape = (value: unknown, at: string) => void;

const wrong = (at: string, expected: string, value: unknown) => {
  const got = value === undefined ? 'missing' : value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;
  return new Error(`${at} is ${got}, expected ${expected}`);
};

const primitive =
  (type: 'string' | 'number' | 'boolean'): Shape =>
  (value, at) => {
    if (typeof value !== type || (type === 'number' && !Number.isFinite(value))) throw wrong(at, `a ${type}`, value);
  };

/** Far above any field of a real answer (an ID, a reason, a PEM), far below what floods a terminal. */
const MAX_TEXT = 64 * 1024;

const text =
  (lines: 'one' | 'many'): Shape =>
  (value, at) => {
    primitive('string')(value, at);
    const s = value as string;
    if (s.length > MAX_TEXT) throw new Error(`${at} is ${s.length} characters, more than ${MAX_TEXT}`);
    if (hasControlCharacters(lines === 'many' ? s.replace(/\r?\n/g, '') : s)) throw new Error(`${at} holds control characters`);
  };

/** One line of printable text. */
export const str = text('one');
/** Printable text over several lines (a PEM). */
export const lines = text('many');
export const num = primitive('number');
export const bool = primitive('boolean');

/** May be absent (undefined). */
export const optional =
  (shape: Shape): Shape =>
  (value, at) => {
    if (value !== undefined) shape(value, at);
  };

/** May be null. */
export const nullable =
  (shape: Shape): Shape =>
  (value, at) => {
    if (value !== null) shape(value, at);
  };

export const list =
  (item: Shape): Shape =>
  (value, at) => {
    if (!Array.isArray(value)) throw wrong(at, 'an array', value);
    value.forEach((v, i) => {
      item(v, `${at}[${i}]`);
    });
  };

/** The named fields, read as own properties only (a JSON "__proto__" key is data, never the prototype). */
export const record =
  (fields: Readonly<Record<string, Shape>>): Shape =>
  (value, at) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw wrong(at, 'an object', value);
    for (const [name, shape] of Object.entries(fields)) shape(Object.hasOwn(value, name) ? (value as Record<string, unknown>)[name] : undefined, `${at}.${name}`);
  };

/** The answer as T once it has the shape; `what` names the request in the error (e.g. "POST /v1/tokens"). */
export function checkAnswer<T>(value: unknown, shape: Shape, what: string): T {
  try {
    shape(value, 'answer');
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_CP_ADMIN_BAD_ANSWER', `${what}: ${(e as Error).message}`);
  }
  return value as T;
}
