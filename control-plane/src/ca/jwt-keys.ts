// The control plane's JWT-SVID signing keys (ES256, P-256): one active key signs; on rotation it is retired and
// stays published until every token it signed has expired, then it is removed. Keys are 0600 PEM files and the
// key list a JSON file, in <dataDir>/jwt, each written atomically (key first, so the list never names a missing key).
import { type KeyObject, createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../../../common/clock.js';
import { TesseraError } from '../../../common/errors.js';
import type { JwtAuthority } from '../../../common/spiffe/spiffe-bundle.js';
import { TMP_MARKER, writeFileAtomicSync } from './atomic-file.js';

export interface JwtSigningKey extends JwtAuthority {
  readonly privateKey: KeyObject;
}

interface KeyRecord {
  readonly kid: string;
  readonly createdAtMs: number;
  /** Set when a successor took over; published until publishUntilMs. */
  readonly retiredAtMs?: number;
  readonly publishUntilMs?: number;
}

export interface JwtKeyOptions {
  /** <dataDir>/jwt. */
  readonly dir: string;
  readonly clock: Clock;
  /** The active key is replaced after this long. */
  readonly rotateEveryMs: number;
  /** The longest a JWT-SVID lives (plus validators' skew): how long a retired key stays published. */
  readonly overlapMs: number;
}

export type JwtKeyEvent = { readonly event: 'jwt_key.created' | 'jwt_key.retired' | 'jwt_key.removed'; readonly kid: string };

const LIST_FILE = 'keys.json';
const keyFile = (dir: string, kid: string) => join(dir, `${kid}.key.pem`);

/** RFC 7638 JWK thumbprint of an EC public key: a stable, content-derived kid. */
export function jwkThumbprint(publicKey: KeyObject): string {
  const j = publicKey.export({ format: 'jwk' }) as { crv: string; kty: string; x: string; y: string };
  return createHash('sha256').update(JSON.stringify({ crv: j.crv, kty: j.kty, x: j.x, y: j.y })).digest('base64url');
}

export class JwtKeys {
  readonly #o: JwtKeyOptions;
  #records: KeyRecord[];
  readonly #keys = new Map<string, KeyObject>();

  private constructor(o: JwtKeyOptions, records: KeyRecord[]) {
    this.#o = o;
    this.#records = records;
  }

  /** Loads the keys (creating the first one when there is none); the events say what was created. */
  static open(o: JwtKeyOptions): { keys: JwtKeys; events: JwtKeyEvent[] } {
    try {
      mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new TesseraError('TESSERA_ERR_CP_START_FAILED', `${o.dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {}, { cause: e });
    }
    const listPath = join(o.dir, LIST_FILE);
    let records: KeyRecord[] = [];
    if (existsSync(listPath)) {
      try {
        records = (JSON.parse(readFileSync(listPath, 'utf8')) as { keys: KeyRecord[] }).keys;
        if (!Array.isArray(records)) throw new Error('no keys array');
      } catch (e) {
        throw new TesseraError('TESSERA_ERR_CA_STATE_CORRUPT', `${listPath}: ${(e as Error).message}`, { file: listPath });
      }
    }
    const keys = new JwtKeys(o, records);
    for (const r of records) keys.#keys.set(r.kid, keys.#load(r.kid));
    keys.#sweepOrphans();
    const events = keys.maintain();
    return { keys, events };
  }

  /** The key that signs now. */
  active(): JwtSigningKey {
    const r = this.#records.find((k) => k.retiredAtMs === undefined)!;
    const privateKey = this.#keys.get(r.kid)!;
    return { keyId: r.kid, privateKey, publicKey: createPublicKey(privateKey) };
  }

  /** Every key a live token may name: the active one and the retired ones still in their overlap, oldest first. */
  published(): JwtAuthority[] {
    return this.#records.map((r) => ({ keyId: r.kid, publicKey: createPublicKey(this.#keys.get(r.kid)!) }));
  }

  /** Rotates now: a new active key; the previous one is retired and published for the overlap. */
  rotate(): JwtKeyEvent[] {
    return this.#change(true);
  }

  /** Creates the first key, rotates a key past its period, removes retired keys past their overlap. */
  maintain(): JwtKeyEvent[] {
    const now = this.#o.clock.nowMs();
    const active = this.#records.find((k) => k.retiredAtMs === undefined);
    return this.#change(!active || now - active.createdAtMs >= this.#o.rotateEveryMs);
  }

  #change(rotate: boolean): JwtKeyEvent[] {
    const now = this.#o.clock.nowMs();
    const events: JwtKeyEvent[] = [];
    let records = this.#records;
    if (rotate) {
      records = records.map((r) => {
        if (r.retiredAtMs !== undefined) return r;
        events.push({ event: 'jwt_key.retired', kid: r.kid });
        return { ...r, retiredAtMs: now, publishUntilMs: now + this.#o.overlapMs };
      });
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const kid = jwkThumbprint(createPublicKey(privateKey));
      // The key is on disk before the list names it: a crash in between leaves an orphan, swept at the next start.
      writeFileAtomicSync(keyFile(this.#o.dir, kid), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
      this.#keys.set(kid, privateKey);
      records = [...records, { kid, createdAtMs: now }];
      events.push({ event: 'jwt_key.created', kid });
    }
    const expired = records.filter((r) => r.publishUntilMs !== undefined && r.publishUntilMs <= now);
    if (expired.length > 0) {
      records = records.filter((r) => !expired.includes(r));
      for (const r of expired) events.push({ event: 'jwt_key.removed', kid: r.kid });
    }
    if (events.length === 0) return events;
    writeFileAtomicSync(join(this.#o.dir, LIST_FILE), `${JSON.stringify({ keys: records }, null, 2)}\n`, 0o600);
    this.#records = records;
    for (const r of expired) {
      this.#keys.delete(r.kid);
      unlinkSync(keyFile(this.#o.dir, r.kid));
    }
    return events;
  }

  #load(kid: string): KeyObject {
    const path = keyFile(this.#o.dir, kid);
    // Tessera writes these itself, always 0600: anything wider means someone else changed or can read it.
    const mode = existsSync(path) ? statSync(path).mode & 0o777 : 0o600;
    if ((mode & 0o077) !== 0) throw new TesseraError('TESSERA_ERR_CA_KEY_EXPOSED', `${path}: mode ${mode.toString(8).padStart(4, '0')}; a JWT signing key must be 0600`, { file: path });
    try {
      const key = createPrivateKey(readFileSync(path));
      if (jwkThumbprint(createPublicKey(key)) !== kid) throw new Error('the key is not the one its kid names');
      return key;
    } catch (e) {
      throw new TesseraError('TESSERA_ERR_CA_STATE_CORRUPT', `${path}: ${(e as Error).message}`, { file: path });
    }
  }

  /** Key files no record names (a crash between writing a key and the list) and leftover temporary files. */
  #sweepOrphans(): void {
    for (const f of readdirSync(this.#o.dir)) {
      const orphanKey = f.endsWith('.key.pem') && !this.#keys.has(f.slice(0, -'.key.pem'.length));
      if (orphanKey || f.includes(TMP_MARKER)) unlinkSync(join(this.#o.dir, f));
    }
  }
}
