// The static endpoints file: read whole into a view, each fault named as file:line: key with
// TESSERA_ERR_DISCOVERY_SOURCE_FAILED, and a bad edit keeps the last good view of the watched source.
import { execFileSync } from 'node:child_process';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { type TesseraError, isTesseraError } from '../../../../common/errors.js';
import type { SourceView } from '../../../../control-plane/src/discovery/endpoint-source.js';
import { MAX_STATIC_FILE_BYTES, readStaticEndpoints, StaticEndpointsSource } from '../../../../control-plane/src/discovery/static-endpoints-source.js';
import { ARMED_POLL_FACTOR } from '../../../../shared-io/file-watch.js';
import { FakeTime } from '../../../helpers/fake-time.js';
import { tempDirPerTest } from '../../../helpers/temp-dir.js';

const GOOD = ['services:', '  api.default:', '    - { address: 127.0.0.2:15006, spiffeId: spiffe://example.org/api, protocol: grpc }', '    - { address: "[::1]:15006", spiffeId: spiffe://example.org/api, ready: false, zone: z1, weight: 5 }', ''].join('\n');

function failure(fn: () => unknown): TesseraError {
  try {
    fn();
  } catch (e) {
    if (isTesseraError(e)) return e;
    throw e;
  }
  throw new Error('did not fail');
}

describe('readStaticEndpoints', () => {
  const tmp = tempDirPerTest();
  const write = (text: string) => {
    const f = join(tmp.dir, 'endpoints.yaml');
    writeFileSync(f, text);
    return f;
  };

  test('a valid file becomes the view, every endpoint marked static, defaults filled in', () => {
    const view = readStaticEndpoints(write(GOOD));
    expect([...view.keys()]).toEqual(['api.default']);
    expect(view.get('api.default')).toEqual([
      { host: '127.0.0.2', port: 15006, spiffeId: 'spiffe://example.org/api', protocol: 'grpc', ready: true, zone: '', weight: 100, source: 'static' },
      { host: '::1', port: 15006, spiffeId: 'spiffe://example.org/api', protocol: 'http', ready: false, zone: 'z1', weight: 5, source: 'static' },
    ]);
  });

  test.each([
    ['a bad service name', 'services:\n  API_x:\n    - { address: 127.0.0.2:1, spiffeId: spiffe://example.org/a }\n', 2, 'services.API_x'],
    ['a missing spiffeId', 'services:\n  api:\n    - { address: 127.0.0.2:1 }\n', 3, 'services.api[0].spiffeId'],
    ['a bad address', 'services:\n  api:\n    - { address: nope, spiffeId: spiffe://example.org/a }\n', 3, 'services.api[0].address'],
    ['a weight out of range', 'services:\n  api:\n    - { address: 127.0.0.2:1, spiffeId: spiffe://example.org/a, weight: 0 }\n', 3, 'services.api[0].weight'],
    ['an unknown key', 'services:\n  api:\n    - { address: 127.0.0.2:1, spiffeId: spiffe://example.org/a, prot: tcp }\n', 3, 'services.api[0].prot'],
    ['the same address twice', 'services:\n  api:\n    - { address: 127.0.0.2:1, spiffeId: spiffe://example.org/a }\n    - { address: 127.0.0.2:1, spiffeId: spiffe://example.org/b }\n', 4, 'services.api[1].address'],
    ['YAML that does not parse (the [ never closed, on line 1)', 'services: [\n', 1, undefined],
  ])('%s is refused naming file:line and key', (_what, text, line, key) => {
    const f = write(text);
    const e = failure(() => readStaticEndpoints(f));
    expect(e.code).toBe('TESSERA_ERR_DISCOVERY_SOURCE_FAILED');
    expect(e.message).toContain(`${f}:${line}`);
    if (key) expect(e.message).toContain(key);
  });

  test("a FIFO or a device in the file's place is a source failure at once, never read (a FIFO froze the control plane)", () => {
    const fifo = join(tmp.dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    const zero = join(tmp.dir, 'zero.yaml');
    symlinkSync('/dev/zero', zero);
    for (const f of [fifo, zero]) {
      const t0 = Date.now();
      const e = failure(() => readStaticEndpoints(f));
      expect(e.code).toBe('TESSERA_ERR_DISCOVERY_SOURCE_FAILED');
      expect(e.message).toContain('not a regular file');
      expect(Date.now() - t0).toBeLessThan(2_000);
    }
  });

  test('a missing file is a source failure, not a crash', () => {
    expect(failure(() => readStaticEndpoints(join(tmp.dir, 'absent.yaml'))).code).toBe('TESSERA_ERR_DISCOVERY_SOURCE_FAILED');
  });

  test('one size limit, 1 MiB: just under it is read; over it (1.5 MiB or 5 MiB) is a source failure naming the file and the limit', () => {
    expect(MAX_STATIC_FILE_BYTES).toBe(1 << 20);
    const pad = (bytes: number) => `${GOOD}#${'x'.repeat(bytes - GOOD.length - 2)}\n`;
    expect(readStaticEndpoints(write(pad(MAX_STATIC_FILE_BYTES))).get('api.default')).toHaveLength(2);
    for (const size of [MAX_STATIC_FILE_BYTES + 1, 1.5 * MAX_STATIC_FILE_BYTES, 5 * MAX_STATIC_FILE_BYTES]) {
      const f = write(pad(size));
      const e = failure(() => readStaticEndpoints(f));
      expect(e.code).toBe('TESSERA_ERR_DISCOVERY_SOURCE_FAILED');
      expect(e.message).toBe(`${f}: cannot read the static endpoints file: over ${MAX_STATIC_FILE_BYTES} bytes, the most it may be`);
    }
  });
});

describe('StaticEndpointsSource', () => {
  const tmp = tempDirPerTest();

  test('reports the view at start and after each change; a bad edit is reported and the last view stays', () => {
    const file = join(tmp.dir, 'endpoints.yaml');
    writeFileSync(file, GOOD);
    const time = new FakeTime();
    const views: SourceView[] = [];
    const errors: TesseraError[] = [];
    const source = new StaticEndpointsSource({ file, timers: time, pollMs: 1_000, onError: (e) => errors.push(e) });
    // A synchronous test sees no fs.watch event: the poll reads each change, at its pace while the directory is watched.
    const poll = 1_000 * ARMED_POLL_FACTOR + 100;
    source.start((v) => views.push(v));
    try {
      expect(views).toHaveLength(1);
      writeFileSync(file, 'services:\n  api.default:\n    - { address: 127.0.0.9:1 }\n# a longer file, so the size differs\n');
      time.advance(poll);
      expect(views).toHaveLength(1);
      expect(errors.map((e) => e.code)).toEqual(['TESSERA_ERR_DISCOVERY_SOURCE_FAILED']);
      writeFileSync(file, 'services:\n  db:\n    - { address: 127.0.0.9:5432, spiffeId: spiffe://example.org/db, protocol: tcp }\n');
      time.advance(poll);
      expect(views).toHaveLength(2);
      expect([...views[1]!.keys()]).toEqual(['db']);
    } finally {
      source.stop();
    }
  });
});
