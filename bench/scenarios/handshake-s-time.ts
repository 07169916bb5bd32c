// The handshake scenario's second client: `openssl s_time` (the system OpenSSL, one connection at a time), full
// (`-new`) or resumed (`-reuse`), mTLS with the bench client SVID, one request per connection (`-www /`). An
// independent client beside the Node one: its server CPU per handshake is measured from /proc around the run, its
// own CPU is what s_time reports (user seconds; s_time exits, so /proc cannot be read after the run).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchContext, RoundVariant } from '../harness/bench-context.js';
import type { LeafFiles } from '../harness/bench-pki.js';
import { measureWindow } from '../harness/measure-window.js';
import type { SupervisedProcess } from '../../shared-io/process-supervisor.js';

export interface STimeTally {
  readonly connections: number;
  /** Client user CPU seconds, as s_time prints them ("N connections in Xs; …/user sec"). */
  readonly userSeconds: number | null;
  /** Connections that resumed (`r`) among those s_time marked (`r` resumed, `*` full) in -reuse mode. */
  readonly resumed: number;
  readonly marked: number;
}

/** Parses s_time's summary ("714 connections in 0.71s; 1005.63 connections/user sec, …") and its r/* marks. */
export function parseSTime(text: string, reuse: boolean): STimeTally {
  const m = /(\d+) connections in ([\d.]+)s;/.exec(text);
  let resumed = 0;
  let marked = 0;
  if (reuse) {
    const marks = text.split('starting')[1] ?? '';
    for (const ch of marks.split('\n\n')[0] ?? '') {
      if (ch === 'r') resumed++;
      if (ch === 'r' || ch === '*') marked++;
    }
  }
  return { connections: m ? Number(m[1]) : 0, userSeconds: m ? Number(m[2]) : null, resumed, marked };
}

export interface STimeTarget {
  readonly server: SupervisedProcess;
  readonly port: number;
  readonly client: LeafFiles;
}

/**
 * A round of s_time against `target`. s_time sends the chain it can build from -CAfile, so that file holds the
 * root and the client chain (leaf + intermediate): the server gets leaf, intermediate and root, as from a Node client
 * plus the root (a trust anchor, which the SVID check allows).
 */
export async function sTimeVariant(ctx: BenchContext, openssl: string, name: string, slug: string, target: STimeTarget, reuse: boolean): Promise<RoundVariant> {
  const caFile = join(ctx.opts.workDir, `${slug}-s_time-ca.pem`);
  await writeFile(caFile, `${await readFile(ctx.pki.rootFile, 'utf8')}${target.client.chainPem}`);
  const o = ctx.opts;
  let n = 0;
  const runFor = async (seconds: number): Promise<STimeTally> => {
    const args = ['s_time', '-connect', `127.0.0.1:${target.port}`, reuse ? '-reuse' : '-new', '-cert', target.client.chainFile, '-key', target.client.keyFile, '-CAfile', caFile, '-www', '/', '-time', String(seconds)];
    const p = await ctx.group.start({ name: `${slug}-s_time-${++n}`, command: openssl, args, output: 'pipe' });
    await p.exited;
    return parseSTime(p.stdout(), reuse);
  };
  // s_time counts whole seconds; the measured window is at least 1 s.
  const seconds = Math.max(1, Math.round(o.durationMs / 1000));
  return {
    name,
    async run(_round, tick) {
      tick(0);
      if (o.warmupMs > 0) await runFor(1);
      tick(0.3);
      const { result: t, sample } = await measureWindow([{ role: 'server', pid: target.server.pid }], ctx.clockTicksPerSecond, () => runFor(seconds));
      tick(1);
      const serverUs = sample.cpuUs['server'];
      const perHs = t.connections > 0 && serverUs !== undefined && Number.isFinite(serverUs) ? Math.round(serverUs / t.connections) : null;
      const row: Record<string, string | number | null> = {
        handshakes: t.connections,
        handshakesPerSec: Math.round(t.connections / (sample.wallMs / 1000)),
        resumedShare: reuse ? (t.marked > 0 ? Math.round((t.resumed / t.marked) * 1000) / 1000 : null) : 0,
        // The system OpenSSL 3.0 has no ML-KEM: X25519 with every server here.
        group: 'X25519',
        protocol: 'TLSv1.3',
        serverCpuUsPerHandshake: perHs,
        clientCpuUsPerHandshake: t.connections > 0 && t.userSeconds !== null ? Math.round((t.userSeconds * 1e6) / t.connections) : null,
        serverCapacityPerCore: perHs ? Math.round(1e6 / perHs) : null,
        errors: 0,
        errorSample: null,
        machineBusy: Math.round(sample.machineBusy * 1000) / 1000,
        machineSteal: Math.round(sample.machineSteal * 1000) / 1000,
      };
      if (t.connections === 0) row['skipped'] = 'openssl s_time completed no connection';
      return row;
    },
  };
}
