// The JWT-SVID signing keys in <dataDir>/jwt: one 0600 PEM file per key and the key list (keys.json), each written
// atomically, the key before the list that names it; a key file no list names (a crash in between) is swept at load.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { TesseraError } from '../../../common/errors.js';
import { TMP_MARKER, writeFileAtomicSync } from './atomic-file.js';
import { type JwtKeyBackend, type JwtKeyRecord, jwkThumbprint } from './jwt-key-backend.js';
import { beyondOwner } from '../../../shared-io/key-file-exposure.js';

const LIST_FILE = 'keys.json';
const keyFile = (dir: string, kid: string) => join(dir, `${kid}.key.pem`);

export function jwtKeyFiles(dir: string): JwtKeyBackend {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_CP_START_FAILED', `${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {}, { cause: e });
  }
  return {
    shared: false,
    load: async () => {
      const listPath = join(dir, LIST_FILE);
      if (!existsSync(listPath)) {
        sweepOrphans(dir, new Set());
        return null;
      }
      let records: JwtKeyRecord[];
      try {
        records = (JSON.parse(readFileSync(listPath, 'utf8')) as { keys: JwtKeyRecord[] }).keys;
        if (!Array.isArray(records)) throw new Error('no keys array');
      } catch (e) {
        throw new TesseraError('TESSERA_ERR_CA_STATE_CORRUPT', `${listPath}: ${(e as Error).message}`, { file: listPath });
      }
      const keys = new Map(records.map((r) => [r.kid, loadKey(dir, r.kid)]));
      sweepOrphans(dir, new Set(keys.keys()));
      return { records, keys, version: null };
    },
    save: async (next, change) => {
      for (const kid of change.added) writeFileAtomicSync(keyFile(dir, kid), next.keys.get(kid)!.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
      writeFileAtomicSync(join(dir, LIST_FILE), `${JSON.stringify({ keys: next.records }, null, 2)}\n`, 0o600);
      for (const kid of change.removed) unlinkSync(keyFile(dir, kid));
      return null;
    },
  };
}

function loadKey(dir: string, kid: string): KeyObject {
  const path = keyFile(dir, kid);
  // Tessera writes these itself, always 0600: anything wider means someone else changed or can read it.
  const exposed = beyondOwner(existsSync(path) ? statSync(path).mode : 0o600);
  if (exposed) throw new TesseraError('TESSERA_ERR_CA_KEY_EXPOSED', `${path}: ${exposed}; a JWT signing key must be 0600`, { file: path });
  try {
    const key = createPrivateKey(readFileSync(path));
    if (jwkThumbprint(createPublicKey(key)) !== kid) throw new Error('the key is not the one its kid names');
    return key;
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_CA_STATE_CORRUPT', `${path}: ${(e as Error).message}`, { file: path });
  }
}

/** Key files no record names (a crash between writing a key and the list) and leftover temporary files. */
function sweepOrphans(dir: string, named: ReadonlySet<string>): void {
  for (const f of readdirSync(dir)) {
    const orphanKey = f.endsWith('.key.pem') && !named.has(f.slice(0, -'.key.pem'.length));
    if (orphanKey || f.includes(TMP_MARKER)) unlinkSync(join(dir, f));
  }
}
