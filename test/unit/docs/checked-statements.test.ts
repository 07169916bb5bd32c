// Statements in the docs that can drift from the program, checked against the program itself. A fenced block right
// after `<!-- checked-output: NAME -->` (in README.md, docs/ or docs/runbooks/) must have the shape of what the
// built CLI really prints for NAME (ids, times, numbers and paths stand for any); every marker names a check here,
// and every check here finds its marker. Defaults the prose quotes are compared with the config schemas.
// The output checks run real processes (dist/, built by `npm test`'s pretest): a control plane, a proxy, `tessera up`.
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { defaultMesh } from '../../../cli/up/mesh-spec.js';
import type { ObjectSchema, Schema } from '../../../common/config/schema.js';
import { controlPlaneSchema } from '../../../control-plane/src/config/cp-config.js';
import { startControlPlaneProcess, writeControlPlaneConfig } from '../../helpers/control-plane.js';
import { startProxyProcess, writeSvidFiles } from '../../helpers/proxy-process.js';
import { startRefusingTlsServer } from '../../helpers/refusing-tls-server.js';
import { holdDefaultPorts } from '../../helpers/default-ports-lock.js';
import { startReadyProcess } from '../../helpers/ready-process.js';
import { makeTempDir, REPO_ROOT, tessera } from '../../helpers/run.js';
import { TestCa } from '../../helpers/test-ca.js';
import { until } from '../../helpers/until.js';

const DOC_FILES = ['README.md', ...['docs', 'docs/runbooks'].flatMap((d) => readdirSync(join(REPO_ROOT, d)).filter((f) => f.endsWith('.md')).map((f) => `${d}/${f}`))];
const read = (file: string) => readFileSync(join(REPO_ROOT, file), 'utf8');

/** Every `<!-- checked-output: NAME -->` block: name → [file, block text]. */
function markedBlocks(): Map<string, { file: string; text: string }[]> {
  const out = new Map<string, { file: string; text: string }[]>();
  for (const file of DOC_FILES) {
    for (const m of read(file).matchAll(/<!-- checked-output: ([a-z0-9-]+) -->\n```[a-z]*\n([\s\S]*?)```/g)) {
      out.set(m[1]!, [...(out.get(m[1]!) ?? []), { file, text: m[2]! }]);
    }
    // A marker not followed by a fenced block would silently check nothing.
    const markers = [...read(file).matchAll(/<!-- checked-output: /g)].length;
    const blocks = [...read(file).matchAll(/<!-- checked-output: [a-z0-9-]+ -->\n```/g)].length;
    expect(blocks, `${file}: every checked-output marker is followed by a fenced block`).toBe(markers);
  }
  return out;
}

/** What stays when the values that differ between runs go: times, absolute paths, hex ids, numbers, alignment. */
function shape(text: string): string[] {
  const lines = text.split('\n').map((l) =>
    l
      .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z/g, '<time>')
      .replace(/(?<![\w.:])\/[^\s"]+/g, '<path>')
      .replace(/\b[0-9a-f]{8,}\b/g, '<hex>')
      .replace(/\d(?:[\d ]*\d)?/g, '<n>')
      .replace(/\s+/g, ' ')
      .trim(),
  );
  while (lines.at(-1) === '') lines.pop();
  return lines;
}

/** Each check returns the real output whose shape the documented block must have. */
type Check = () => Promise<string>;

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
});
afterAll(async () => cleanup?.());

async function caRotationOutputs(): Promise<{ prepare: string; activate: string }> {
  const cpDir = join(dir, 'cp');
  const cp = await startControlPlaneProcess(cpDir, await writeControlPlaneConfig(cpDir));
  try {
    const prepare = await tessera(['ca', 'prepare', '--data-dir', cp.dataDir]);
    const activate = await tessera(['ca', 'activate', '--data-dir', cp.dataDir]);
    expect(prepare.code, prepare.stderr).toBe(0);
    expect(activate.code, activate.stderr).toBe(0);
    return { prepare: prepare.stdout, activate: activate.stdout };
  } finally {
    await cp.stop();
  }
}
let ca: Promise<{ prepare: string; activate: string }> | undefined;
const caOnce = () => (ca ??= caRotationOutputs());

const CHECKS: Readonly<Record<string, Check>> = {
  'ca-prepare': async () => (await caOnce()).prepare,
  'ca-activate': async () => (await caOnce()).activate,

  // docs/runbooks/expired-certs.md: a proxy on file identities turns unready (503, with the file) once its SVID expires.
  'files-expired-ready': async () => {
    const testCa = await TestCa.create();
    const id = 'spiffe://example.org/ns/default/sa/api';
    const files = join(dir, 'files');
    await writeSvidFiles(testCa, id, files);
    const config = join(dir, 'files.yaml');
    await writeFile(config, 'identity:\n  files: { certFile: files/svid.pem, keyFile: files/key.pem, bundleFile: files/bundle.pem }\ninbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:9 }\nauthorization: { defaultAction: allow }\nadmin: { listen: 127.0.0.1:0 }\n');
    const proxy = await startProxyProcess(config);
    try {
      const ready = () => fetch(`http://127.0.0.1:${proxy.admin}/ready`);
      expect((await ready()).status).toBe(200);
      // Files that expire soon, swapped in once it is ready: a start slowed by a busy machine cannot outlast them.
      await writeSvidFiles(testCa, id, files, { notAfter: new Date(Date.now() + 3_000) });
      let body = '';
      await until('the proxy turns unready after its SVID expired', async () => {
        const r = await ready();
        body = await r.text();
        return r.status === 503;
      }, 20_000);
      // New files make it ready again (the runbook says so).
      await writeSvidFiles(testCa, id, files);
      await until('the proxy is ready again with new files', async () => (await ready()).status === 200, 20_000);
      return body;
    } finally {
      await proxy.stop();
    }
  },

  // docs/getting-started.md: a taken port, a demo app's included, is moved and the summary says so.
  'up-port-moved': async () => {
    // The e2e test of `tessera up` wants the same default ports from the other worker: take turns.
    const release = await holdDefaultPorts();
    try {
      return await upPortMoved();
    } finally {
      await release();
    }
  },

  // docs/cli.md, tessera load: the errors line against a server that refuses every handshake.
  'load-refused': async () => {
    const server = await startRefusingTlsServer(dir);
    try {
      const r = await tessera(['load', '--url', server.url, '--cert', server.certFile, '--key', server.keyFile, '--duration', '1s', '--connections', '2']);
      expect(r.code).toBe(1);
      return r.stdout.split('\n').find((l) => l.startsWith('errors'))!;
    } finally {
      await server.close();
    }
  },
};

describe('checked-output blocks in the docs', () => {
  const blocks = markedBlocks();

  test('every marker names a check, and every check has its marker', () => {
    expect([...blocks.keys()].filter((n) => !(n in CHECKS)), 'markers without a check').toEqual([]);
    expect(Object.keys(CHECKS).filter((n) => !blocks.has(n)), 'checks whose marker is gone from the docs').toEqual([]);
  });

  // Side by side: each check has its own dir, processes and ports (`tessera up` alone takes the demo's), and most of
  // their time is waiting (an SVID running out, `load --duration`), which `tessera up`'s start-up fills.
  for (const [name, check] of Object.entries(CHECKS)) {
    test.concurrent(`${name}: the documented output has the shape the program prints`, { timeout: 300_000 }, async () => {
      const documented = blocks.get(name) ?? [];
      expect(documented.length, `a checked-output: ${name} block in the docs`).toBeGreaterThan(0);
      const real = shape(await check());
      for (const b of documented) expect(shape(b.text), `${b.file}, block ${name}`).toEqual(real);
    });
  }
});

function schemaDefault(schema: ObjectSchema, path: string): unknown {
  let s: Schema = schema;
  for (const key of path.split('.')) {
    if (s.type !== 'object') throw new Error(`${path}: ${key} is not under an object`);
    s = s.properties[key]!;
  }
  return (s as { default?: unknown }).default;
}

/** "1h" → "1 h", the way the prose writes durations. */
const prose = (d: unknown) => String(d).replace(/^(\d+)([a-z]+)$/, '$1 $2');

/** Defaults quoted in prose: the regex captures the quoted values, in order, and they must equal the program's. */
const QUOTED_DEFAULTS: readonly { file: string; text: RegExp; values: () => string[] }[] = [
  {
    file: 'docs/getting-started.md',
    text: /defaults: gRPC on `([^`]+)`, admin on\s+`([^`]+)`/,
    values: () => [String(schemaDefault(controlPlaneSchema, 'listen')), String(schemaDefault(controlPlaneSchema, 'adminListen'))],
  },
  { file: 'docs/getting-started.md', text: /half of the SVID\s+lifetime \((\d+ h) by default\)/, values: () => [prose(schemaDefault(controlPlaneSchema, 'svid.ttl'))] },
  { file: 'docs/runbooks/expired-certs.md', text: /`svid\.ttl` \((\d+ h) by default\)/, values: () => [prose(schemaDefault(controlPlaneSchema, 'svid.ttl'))] },
  { file: 'docs/getting-started.md', text: /SVIDs here live (\d+ minutes)/, values: () => [`${defaultMesh().svidTtlMs / 60_000} minutes`] },
];

describe('defaults quoted in the docs', () => {
  for (const q of QUOTED_DEFAULTS) {
    test(`${q.file}: ${q.text.source}`, () => {
      const m = q.text.exec(read(q.file));
      expect(m, `${q.file} still says ${q.text.source}`).not.toBeNull();
      expect(m!.slice(1)).toEqual(q.values());
    });
  }
});

describe('the README status table and getting-started agree', () => {
  test('replicas sharing one CA and TokenReview: both "works" in the status table, not "not there yet" in the guide', () => {
    const readme = read('README.md');
    const guide = read('docs/getting-started.md');
    expect(readme).toMatch(/^\| Several control-plane replicas sharing one CA \| works/m);
    expect(readme).toMatch(/^\| Kubernetes attestation \| works: .*TokenReview/m);
    expect(guide).not.toMatch(/not there yet/i);
    expect(guide).toMatch(/two replicas sharing one CA/);
    expect(guide).toMatch(/TokenReview/);
  });
});

/**
 * `tessera up` with the demo's port 18080 taken: the summary's note that it was moved. A mesh.yaml of web alone (the
 * built-in demo app on 18080, every other port free) moves that port through the same picker and summary as the
 * embedded default, with 4 processes started instead of 10 (the default's api replicas and their tokens and sidecars).
 */
async function upPortMoved(): Promise<string> {
  const mesh = join(dir, 'mesh.yaml');
  await writeFile(mesh, 'workloads:\n  - { name: web, appPort: 18080 }\n');
  const blocker = createServer();
  const blocked = await new Promise<boolean>((resolve) => {
    blocker.once('error', () => resolve(false)); // already taken by someone else: as good for this check
    blocker.listen({ port: 18080, host: '127.0.0.1', exclusive: true }, () => resolve(true));
  });
  try {
    const up = await startReadyProcess(['up', '--config', mesh, '--state-dir', join(dir, 'up')], 'tessera up: ready', { timeoutMs: 90_000 });
    try {
      const note = up.stdout().split('\n').find((l) => l.includes('note: port 18080 was in use'));
      expect(note, up.stdout()).toBeDefined();
      return note!;
    } finally {
      await up.stop(30_000, 'SIGINT');
    }
  } finally {
    if (blocked) blocker.close();
  }
}
