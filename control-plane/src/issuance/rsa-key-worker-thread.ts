// The thread of rsa-key-worker.ts: judges one RSA public key (SubjectPublicKeyInfo DER) at a time by the CA's rules
// (common/pki/rsa-key-strength.ts) and answers with the verdict. Nothing else runs here, so a key's tens of
// milliseconds of BigInt arithmetic never hold the event loop that serves the mesh.
import { createPublicKey } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { rsaKeyWeakness } from '../../../common/pki/rsa-key-strength.js';

parentPort?.on('message', (spki: Uint8Array) => {
  try {
    parentPort?.postMessage({ weakness: rsaKeyWeakness(createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' })) });
  } catch (e) {
    parentPort?.postMessage({ error: (e as Error).message });
  }
});
