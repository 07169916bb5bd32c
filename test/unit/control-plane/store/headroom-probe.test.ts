// The store health's write probe on a full file system (audit 24b F3): on a small tmpfs filled to the last byte, the
// old probe (one meta counter) still succeeds, in pages a failed write left allocated, while issuance's writes fail.
// The data dir headroom write and the inventory's issuance-sized probeWrite fail, coded TESSERA_ERR_STORE_FULL,
// until there is room again; neither leaves anything behind. Needs root to mount: skipped cleanly otherwise.
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { HEADROOM_PREFIX, probeHeadroom, removeProbeLeftovers } from '../../../../control-plane/src/store/headroom-probe.js';
import { openSqliteStore } from '../../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import type { ControlPlaneStore } from '../../../../control-plane/src/store/store-contract.js';
import { run } from '../../../helpers/run.js';
import { canMount } from '../../../helpers/secret-mount.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const svid = (serial: string) => ({ serial, spiffeId: 'spiffe://example.org/ns/default/sa/web', authorityId: 'a'.repeat(40), intermediateSerial: 'b'.repeat(40), notBeforeMs: 0, notAfterMs: 1, issuedAtMs: 0, attestedAs: 'join_token:abcdef', kind: 'attest', caller: '127.0.0.1:1' });

/** Writes until the file system refuses each size in turn: not a byte left. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  try {
    for (const size of [1 << 20, 4096, 512]) {
      try {
        for (;;) writeSync(fd, Buffer.alloc(size, 1));
      } catch {
        // ENOSPC at this size
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** The probe's scratch files left in `dir`. */
const leftovers = (dir: string) => readdirSync(dir).filter((n) => n.startsWith(HEADROOM_PREFIX));

const fullCode = async (p: Promise<unknown>): Promise<string | undefined> => p.then(() => undefined, (e: unknown) => (isTesseraError(e) ? e.code : String(e)));

describe('the store write probe', () => {
  const tmp = tempDirPerTest();
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  test('the headroom write leaves no file behind', () => {
    probeHeadroom(tmp.dir);
    expect(leftovers(tmp.dir)).toEqual([]);
  });

  // An outside audit: a FIFO named as the probe's file froze the whole control plane in open(2) (waiting for a
  // reader), and a directory of that name kept it not ready for good with an uncoded error. The probe writes a new
  // name each time, never opening what is already there.
  test('a FIFO, a directory or a link with a probe-like name is never opened, and the probe still passes', async () => {
    const planted = join(tmp.dir, `${HEADROOM_PREFIX}fifo`);
    expect((await run('mkfifo', [planted])).code).toBe(0);
    mkdirSync(join(tmp.dir, '.write-probe'));
    writeFileSync(join(tmp.dir, 'target'), 'keep');
    symlinkSync(join(tmp.dir, 'target'), join(tmp.dir, `${HEADROOM_PREFIX}link`));
    for (let i = 0; i < 3; i++) probeHeadroom(tmp.dir);
    expect(leftovers(tmp.dir).sort()).toEqual([`${HEADROOM_PREFIX}fifo`, `${HEADROOM_PREFIX}link`]);
  });

  // The next round: a process killed mid-probe left its file, a new one each time, and nothing removed them.
  test('leftover scratch files are removed at start; what is not a regular file is left alone', async () => {
    for (const n of ['aaaaaaaaaaaa', 'bbbbbbbbbbbb']) writeFileSync(join(tmp.dir, `${HEADROOM_PREFIX}${n}`), Buffer.alloc(65_536));
    expect((await run('mkfifo', [join(tmp.dir, `${HEADROOM_PREFIX}fifo`)])).code).toBe(0);
    mkdirSync(join(tmp.dir, `${HEADROOM_PREFIX}dir`));
    writeFileSync(join(tmp.dir, 'tessera.db'), 'kept');
    removeProbeLeftovers(tmp.dir);
    expect(leftovers(tmp.dir).sort()).toEqual([`${HEADROOM_PREFIX}dir`, `${HEADROOM_PREFIX}fifo`]);
    expect(readdirSync(tmp.dir)).toContain('tessera.db');
    removeProbeLeftovers(join(tmp.dir, 'missing'));
  });

  test('on a full tmpfs: the headroom write and probeWrite fail coded (the old counter write does not), then pass once there is room', async (ctx) => {
    if (!canMount()) ctx.skip();
    const mnt = join(tmp.dir, 'small');
    await mkdir(mnt);
    if ((await run('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt])).code !== 0) ctx.skip();
    let store: ControlPlaneStore | undefined;
    cleanup = async () => {
      await store?.close();
      await run('umount', [mnt]);
    };
    store = await openSqliteStore(mnt);
    for (let i = 0; i < 20; i++) await store.inventory.record(svid(`0${i}`.padStart(40, 'e')));
    fill(join(mnt, 'filler'));
    expect(await fullCode(store.inventory.record(svid('f'.repeat(40))))).toBe('TESSERA_ERR_STORE_FULL');
    // What the probe was: it fits where the failed insert left pages, so it told a full disk was writable again.
    await store.meta.increment('store.write_probe');
    expect(await fullCode(Promise.resolve().then(() => probeHeadroom(mnt)))).toBe('TESSERA_ERR_STORE_FULL');
    expect(await fullCode(store.inventory.probeWrite())).toBe('TESSERA_ERR_STORE_FULL');
    expect(leftovers(mnt)).toEqual([]);

    rmSync(join(mnt, 'filler'));
    probeHeadroom(mnt);
    await store.inventory.probeWrite();
    expect(leftovers(mnt)).toEqual([]);
    await store.inventory.record(svid('f'.repeat(40)));
  });
});
