// Join-token values and their ids: a token is 256 random bits handed to a workload once; the store keeps only its
// SHA-256 hash, and audit lines name it by the hash's first 12 hex digits. Shared by every store implementation.
import { createHash, randomBytes } from 'node:crypto';

/** The short token id that audit lines show ("join_token:<id>"): the first 12 hex digits of the hash. */
export function tokenIdOf(hash: string): string {
  return hash.slice(0, 12);
}

/** 256 random bits, base64url: what the operator hands to a workload. */
export function newJoinToken(): string {
  return randomBytes(32).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
