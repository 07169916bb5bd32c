// For the rotation scenario: atomic SVID file swaps, and a probe that opens fresh mTLS connections to see which
// server certificate a new handshake gets (and whether the request through it succeeds).
import { X509Certificate } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { type SecureContext, connect } from 'node:tls';
import type { LeafFiles, MintedLeaf } from './bench-pki.js';

async function atomicWrite(path: string, content: string, mode: number): Promise<void> {
  await writeFile(`${path}.next`, content, { mode });
  await rename(`${path}.next`, path);
}

/** Replaces a leaf's files by rename (cert, then key, then the combined file): what cert tooling usually does. */
export async function swapLeafFiles(files: LeafFiles, next: MintedLeaf): Promise<void> {
  await writeFile(`${files.chainFile}.next`, next.chainPem);
  await writeFile(`${files.keyFile}.next`, next.keyPem, { mode: 0o600 });
  await rename(`${files.chainFile}.next`, files.chainFile);
  await rename(`${files.keyFile}.next`, files.keyFile);
  await atomicWrite(files.combinedFile, next.chainPem + next.keyPem, 0o600);
}

export interface ProbeResult {
  readonly ok: boolean;
  readonly serialHex: string | null;
  readonly error?: string;
}

/** One fresh mTLS connection + one request; returns the served certificate's serial. */
export function probeOnce(port: number, secureContext: SecureContext, servername: string): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let serial: string | null = null;
    let data = '';
    const sock = connect({ host: '127.0.0.1', port, secureContext, servername, rejectUnauthorized: false }, () => {
      // The leaf alone: Node's X509 reader leaks the chain after it (proxy/src/tls/sent-chain.ts).
      const raw = sock.getPeerCertificate().raw;
      serial = raw ? new X509Certificate(raw).serialNumber.toLowerCase() : null;
      sock.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
    });
    sock.setEncoding('latin1');
    sock.on('data', (c: string) => {
      data += c;
    });
    sock.setTimeout(5_000, () => sock.destroy(new Error('probe timeout')));
    sock.once('end', () => {
      sock.destroy();
      const ok = /^HTTP\/1\.[01] 2\d\d/.test(data);
      resolve(ok ? { ok, serialHex: serial } : { ok, serialHex: serial, error: data.split('\r\n')[0] || 'closed without a response' });
    });
    sock.once('error', (e) => resolve({ ok: false, serialHex: serial, error: e.message }));
  });
}

export interface ProbeLog {
  readonly ok: number;
  readonly failed: number;
  readonly firstError: string | null;
  /** (time, serial) of every successful probe, in order. */
  readonly seen: readonly { readonly atMs: number; readonly serialHex: string | null }[];
}

/** Probes every `intervalMs` until `stop` resolves. */
export async function probeLoop(port: number, secureContext: SecureContext, servername: string, intervalMs: number, stop: Promise<void>): Promise<ProbeLog> {
  let stopped = false;
  void stop.then(() => {
    stopped = true;
  });
  let ok = 0;
  let failed = 0;
  let firstError: string | null = null;
  const seen: { atMs: number; serialHex: string | null }[] = [];
  while (!stopped) {
    const r = await probeOnce(port, secureContext, servername);
    const atMs = performance.now();
    if (r.ok) {
      ok++;
      seen.push({ atMs, serialHex: r.serialHex });
    } else {
      failed++;
      firstError ??= r.error ?? 'unknown';
    }
    await Promise.race([new Promise((res) => setTimeout(res, intervalMs)), stop]);
  }
  return { ok, failed, firstError, seen };
}

/** Time from each rotation until a probe first saw the new serial (null = never seen in the window). */
export function pickupTimes(rotations: readonly { atMs: number; serialHex: string }[], seen: ProbeLog['seen']): (number | null)[] {
  return rotations.map((r) => {
    const hit = seen.find((s) => s.atMs >= r.atMs && s.serialHex === r.serialHex);
    return hit ? hit.atMs - r.atMs : null;
  });
}
