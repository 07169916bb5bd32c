// Layout rules of DESIGN.md section 1, checked on the source: proxy/ and control-plane/ never import each
// other, common/ does no I/O, shared-io/ (the one home of I/O code both sides use) imports only common/ and holds
// the one file watcher, policy-directory source, timer interface and process supervisor, and no file outgrows one
// concern.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, test } from 'vitest';
import { REPO_ROOT } from '../helpers/run.js';

function tsFiles(dir: string): string[] {
  const abs = join(REPO_ROOT, dir);
  let out: string[] = [];
  for (const name of readdirSync(abs)) {
    const p = join(abs, name);
    if (statSync(p).isDirectory()) out = out.concat(tsFiles(relative(REPO_ROOT, p)));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}
const imports = (file: string) => [...readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
/** Where the product's source lives (tests are checked where a rule says so). */
const SOURCE_DIRS = ['common', 'shared-io', 'control-plane', 'proxy', 'cli', 'bench'];
const exists = (dir: string) => {
  try {
    return statSync(join(REPO_ROOT, dir)).isDirectory();
  } catch {
    return false;
  }
};

describe('architecture', () => {
  test('proxy/ does not import control-plane/ and vice versa', () => {
    for (const [from, forbidden] of [['proxy', 'control-plane/'], ['control-plane', 'proxy/']] as const) {
      if (!exists(from)) continue;
      for (const f of tsFiles(from)) for (const i of imports(f)) expect(i.includes(forbidden), `${relative(REPO_ROOT, f)} imports ${i}`).toBe(false);
    }
  });
  test('proxy/ and control-plane/ never name a file of cli/ (a path built at run time escapes the import checks)', () => {
    // cli/ is the top layer that calls into the parts (DESIGN section 1): the proxy's workers get their command from it.
    for (const from of ['proxy', 'control-plane'].filter(exists)) {
      for (const f of tsFiles(from)) expect(/['"`][^'"`]*\bcli\/[\w-]+\.js/.test(readFileSync(f, 'utf8')), `${relative(REPO_ROOT, f)} names a file of cli/`).toBe(false);
    }
  });
  test('common/ does no I/O and imports neither side', () => {
    const io = /^node:(fs|net|tls|http|http2|dgram|child_process|worker_threads|cluster)(\/|$)/;
    for (const f of tsFiles('common')) {
      for (const i of imports(f)) {
        expect(io.test(i), `${relative(REPO_ROOT, f)} imports ${i}`).toBe(false);
        expect(/(control-plane|proxy|cli)\//.test(i), `${relative(REPO_ROOT, f)} imports ${i}`).toBe(false);
      }
    }
  });
  test('shared-io/ imports only common/ (and Node or packages), and common/ never imports shared-io/', () => {
    for (const f of tsFiles('shared-io')) {
      for (const i of imports(f)) {
        if (!i.startsWith('.')) continue;
        expect(/^(\.\/|\.\.\/common\/)/.test(i), `${relative(REPO_ROOT, f)} imports ${i}`).toBe(true);
      }
    }
    for (const f of tsFiles('common')) for (const i of imports(f)) expect(i.includes('shared-io/'), `${relative(REPO_ROOT, f)} imports ${i}`).toBe(false);
  });
  test('the .proto files are loaded in one place (shared-io/proto-loader.ts; their message types live in common/contract/)', () => {
    for (const dir of ['common', 'shared-io', 'control-plane', 'proxy', 'cli', 'bench'].filter(exists)) {
      for (const f of tsFiles(dir)) {
        if (relative(REPO_ROOT, f) === join('shared-io', 'proto-loader.ts')) continue;
        for (const i of imports(f)) expect(i, relative(REPO_ROOT, f)).not.toBe('@grpc/proto-loader');
      }
    }
  });
  test('common/ registers no process-wide collectors (prom-client belongs to the sides or shared-io/)', () => {
    for (const f of tsFiles('common')) for (const i of imports(f)) expect(i, relative(REPO_ROOT, f)).not.toBe('prom-client');
  });
  test('fs.watch is called in one place: shared-io/file-watch.ts (with its ..data, rename and poll handling)', () => {
    const watchImport = /import\s*\{[^}]*\b(watch|watchFile)\b[^}]*\}\s*from\s*['"](node:)?fs(\/promises)?['"]/;
    const watchCall = /\b\w+\.(watch|watchFile)\(/;
    for (const dir of [...SOURCE_DIRS, 'test/helpers'].filter(exists)) {
      for (const f of tsFiles(dir)) {
        if (relative(REPO_ROOT, f) === join('shared-io', 'file-watch.ts')) continue;
        const text = readFileSync(f, 'utf8');
        expect(watchImport.test(text), `${relative(REPO_ROOT, f)} imports fs watch`).toBe(false);
        const fsNamespace = /import\s+\*\s+as\s+\w+\s+from\s+['"](node:)?fs(\/promises)?['"]/.test(text);
        if (fsNamespace) expect(watchCall.test(text), `${relative(REPO_ROOT, f)} calls fs.watch`).toBe(false);
      }
    }
  });
  test('policy directories are read in one place: one PolicyDirSource, the only reader of policy files', () => {
    const home = join('shared-io', 'policy-dir-source.ts');
    for (const dir of SOURCE_DIRS.filter(exists)) {
      for (const f of tsFiles(dir)) {
        const rel = relative(REPO_ROOT, f);
        if (rel === home) continue;
        const text = readFileSync(f, 'utf8');
        expect(/\bclass\s+\w*PolicyDir\w*/.test(text), `${rel} declares a policy-directory class`).toBe(false);
        expect(/import\s*\{[^}]*\bparsePolicyFiles\b/.test(text), `${rel} reads policy files itself`).toBe(false);
      }
    }
  });
  test('one timer interface: Timers in shared-io/timers.ts (narrow it with Pick<Timers, ...>, do not redeclare it)', () => {
    const home = join('shared-io', 'timers.ts');
    const declared = /^\s*(export\s+)?(interface|type)\s+\w*Timers?\b/m;
    // A second real implementation: an object literal that wraps setTimeout / setInterval.
    const realImpl = /\b(setTimeout|setInterval)\s*:\s*\(/;
    for (const dir of [...SOURCE_DIRS, 'test'].filter(exists)) {
      for (const f of tsFiles(dir)) {
        const rel = relative(REPO_ROOT, f);
        if (rel === home) continue;
        const text = readFileSync(f, 'utf8');
        expect(declared.test(text), `${rel} declares its own timer interface`).toBe(false);
        if (!rel.startsWith('test')) expect(realImpl.test(text), `${rel} wraps the real timers itself`).toBe(false);
      }
    }
  });
  test('time is injected: no source file outside the real Timers and Clocks reads a clock or starts a timer itself', () => {
    // Every module takes Timers (shared-io/timers.ts) and a Clock (common/clock.ts) from its options, wired by the
    // composition roots (main.ts, the CLI's commands), so a unit test drives them with test/helpers/fake-time.ts.
    // setImmediate and node:timers/promises' setImmediate are not time (the next turn of the event loop), and
    // Node's own per-object timeouts (socket.setTimeout, stream.setTimeout) are the library's, so neither is banned.
    const shims: Record<string, string> = {
      'shared-io/timers.ts': 'realTimers, the one real Timers',
      'common/clock.ts': 'systemClock, the real Clock (Date.now, the clock grpc-js deadlines are on)',
      'common/precise-clock.ts': 'preciseSystemClock, the real sub-millisecond Clock (performance.now anchored to Date.now)',
      'control-plane/src/admin/dashboard/assets/app-js.ts': "the dashboard's browser script, shipped as a string: the browser's timers and clock",
    };
    const raw: readonly (readonly [RegExp, string])[] = [
      [/(?<![.\w$])setTimeout\s*\(/, 'setTimeout('],
      [/(?<![.\w$])setInterval\s*\(/, 'setInterval('],
      [/\bglobalThis\s*\.\s*(setTimeout|setInterval)\b/, 'globalThis timers'],
      [/import\s*\{[^}]*\b(setTimeout|setInterval|scheduler)\b[^}]*\}\s*from\s*['"](node:)?timers(\/promises)?['"]/, 'a timer from node:timers'],
      [/\bAbortSignal\s*\.\s*timeout\b/, 'AbortSignal.timeout'],
      [/\bDate\s*\.\s*now\b/, 'Date.now'],
      [/\bnew\s+Date\s*\(\s*\)/, 'new Date()'],
      [/(?<![.\w$]|new\s+)Date\s*\(/, 'Date() called as a function'],
      [/\bperformance\s*\.\s*(now|timeOrigin)\b/, 'performance.now'],
      [/\bprocess\s*\.\s*(hrtime|uptime)\b/, 'process.hrtime'],
      [/import\s*\{[^}]*\b(hrtime|uptime)\b[^}]*\}\s*from\s*['"](node:)?process['"]/, 'process.hrtime'],
    ];
    // Comments may name what they avoid: JSDoc and line comments are dropped first (a `//` after a quote or a colon
    // is part of a string or a URL and stays).
    const code = (text: string) => text.replace(/^\s*\/\*[\s\S]*?\*\//gm, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
    const found: string[] = [];
    // bench/ is left out: its harness measures real elapsed time by design (figures, never assertions).
    for (const dir of ['common', 'shared-io', 'control-plane', 'proxy', 'cli'].filter(exists)) {
      for (const f of tsFiles(dir)) {
        const rel = relative(REPO_ROOT, f);
        if (Object.hasOwn(shims, rel)) continue;
        const text = code(readFileSync(f, 'utf8'));
        for (const [re, what] of raw) if (re.test(text)) found.push(`${rel}: ${what}`);
      }
    }
    expect(found, 'raw timers or clock reads: take Timers / a Clock from the options instead').toEqual([]);
    // The allow-list stays true: each entry exists and still is a real implementation.
    for (const rel of Object.keys(shims)) expect(raw.some(([re]) => re.test(code(readFileSync(join(REPO_ROOT, rel), 'utf8')))), `${rel} is allow-listed but reads no clock`).toBe(true);
  });
  test("no source file reads a TLS peer with getPeerX509Certificate (Node 24 leaks every certificate after the leaf)", () => {
    // Node's X509 reader duplicates each certificate the peer sent after its leaf out of the TLS session and never
    // frees the original: a peer's chain leaked on every full handshake, ~250 KB for 31 junk certificates sent by a
    // client with no credential (audit 51b F1). getPeerCertificate(true) (proxy/src/tls/sent-chain.ts) does not.
    const code = (text: string) => text.replace(/^\s*\/\*[\s\S]*?\*\//gm, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
    const found: string[] = [];
    for (const dir of ['common', 'shared-io', 'control-plane', 'proxy', 'cli', 'bench'].filter(exists)) {
      for (const f of tsFiles(dir)) if (/\bgetPeerX509Certificate\b/.test(code(readFileSync(f, 'utf8')))) found.push(relative(REPO_ROOT, f));
    }
    expect(found).toEqual([]);
  });
  test('long-running children are spawned in one place: shared-io/process-supervisor.ts (tessera up, bench, tests)', () => {
    const home = join('shared-io', 'process-supervisor.ts');
    const spawnImport = /import\s*\{[^}]*\b(spawn|fork)\b[^}]*\}\s*from\s*['"](node:)?child_process['"]/;
    const spawnCall = /\b\w+\.(spawn|fork)\(/;
    for (const dir of [...SOURCE_DIRS, 'test'].filter(exists)) {
      for (const f of tsFiles(dir)) {
        const rel = relative(REPO_ROOT, f);
        if (rel === home) continue;
        const text = readFileSync(f, 'utf8');
        expect(spawnImport.test(text), `${rel} spawns a child itself`).toBe(false);
        if (/import\s+\*\s+as\s+\w+\s+from\s+['"](node:)?child_process['"]/.test(text)) expect(spawnCall.test(text), `${rel} spawns a child itself`).toBe(false);
      }
    }
  });
  test('every source file opens with a header comment and stays under ~450 lines', () => {
    for (const dir of ['common', 'shared-io', 'control-plane', 'proxy', 'cli', 'bench'].filter(exists)) {
      for (const f of tsFiles(dir)) {
        if (f.includes('/generated/')) continue;
        const text = readFileSync(f, 'utf8');
        const first = text.split('\n').find((l) => !l.startsWith('#!'))!;
        expect(first.startsWith('//'), `${relative(REPO_ROOT, f)} has no header line`).toBe(true);
        expect(text.split('\n').length, relative(REPO_ROOT, f)).toBeLessThan(450);
      }
    }
  });
  test('the proxy never loads the X.509 library: `tessera proxy`, followed through every import, reaches neither @peculiar/x509 nor reflect-metadata', () => {
    // Each costs an idle sidecar memory (~4 MB of heap together, docs/operations.md "Memory at idle"); the proxy
    // writes its CSRs with common/pki/der-writer.ts. Dynamic import() is followed too: a feature would load it.
    const seen = new Set<string>();
    const packages = new Map<string, string>();
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const m of readFileSync(file, 'utf8').matchAll(/(?:^\s*(?:import|export)\s[^'"]*?from\s+|import\(\s*)['"]([^'"]+)['"]/gm)) {
        const spec = m[1]!;
        if (spec.startsWith('.')) walk(join(file, '..', spec.replace(/\.js$/, '.ts')));
        else if (!spec.startsWith('node:')) packages.set(spec, relative(REPO_ROOT, file));
      }
    };
    walk(join(REPO_ROOT, 'cli/commands/proxy.ts'));
    expect(seen.size).toBeGreaterThan(100);
    expect(packages.has('@grpc/grpc-js')).toBe(true); // the walk does reach the packages the proxy does use
    for (const banned of ['@peculiar/x509', 'reflect-metadata']) expect(packages.get(banned), `${banned} imported`).toBeUndefined();
  });
  test("the control plane's main.ts only wires: no mutable state, no timers of its own, no helpers declared", () => {
    const text = readFileSync(join(REPO_ROOT, 'control-plane/src/main.ts'), 'utf8');
    expect(text.match(/^\s*let\s/gm) ?? [], 'let in control-plane/src/main.ts').toEqual([]);
    expect(text.match(/\b(setInterval|setTimeout|Date\.now)\(/g) ?? [], 'timers or Date.now in control-plane/src/main.ts').toEqual([]);
    expect(text.match(/^(export )?(async )?(function|class)\s+\w+/gm), 'top-level declarations').toEqual(['export async function startControlPlane']);
    expect(text.split('\n').length).toBeLessThan(200);
  });
});
