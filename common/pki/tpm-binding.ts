// What a TPM quote's qualifying data (extraData) must be for Tessera's TPM attestation: SHA-256 of the control
// plane's nonce followed by the CSR's SubjectPublicKeyInfo (DER, as node:crypto exports it). The proxy quotes with
// it and the control plane checks it, so a quote proves freshness (the nonce) and names the key the SVID is for.
import { createHash, createPublicKey } from 'node:crypto';

/** SHA-256(nonce || spkiDer): 32 bytes, within every TPM's TPM2B_DATA limit. */
export function tpmQualifyingData(nonce: Uint8Array, spkiDer: Uint8Array): Buffer {
  return createHash('sha256').update(nonce).update(spkiDer).digest();
}

/** The canonical DER SubjectPublicKeyInfo of a DER SPKI (node:crypto's re-encoding, the one both sides hash). */
export function canonicalSpki(spkiDer: Uint8Array): Buffer {
  return createPublicKey({ key: Buffer.from(spkiDer), format: 'der', type: 'spki' }).export({ format: 'der', type: 'spki' });
}
