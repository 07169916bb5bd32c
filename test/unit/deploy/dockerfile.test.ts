// deploy/Dockerfile checked statically (no container engine on this machine): stages and bases, non-root
// user, no secrets in the context or the image, exec-form ENTRYPOINT at the built CLI, sources all copied.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { NODE_FLAGS } from '../../../shared-io/node-flags.js';
import { REPO_ROOT } from '../../helpers/run.js';

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly line: number;
}
interface Stage {
  readonly from: string;
  readonly name?: string;
  readonly body: Instruction[];
}

/** Dockerfile instructions with continuations joined and comments dropped (the syntax directive included). */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const instructions: Instruction[] = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (buf === '' && (line === '' || line.startsWith('#'))) return;
    if (buf === '') start = i + 1;
    if (line.endsWith('\\')) {
      buf += `${line.slice(0, -1)} `;
      return;
    }
    buf += line;
    const m = /^(\S+)\s*(.*)$/.exec(buf)!;
    instructions.push({ op: m[1]!.toUpperCase(), args: m[2]!, line: start });
    buf = '';
  });
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === 'ARG' && stages.length === 0) {
      const [k, v] = ins.args.split('=', 2);
      // A global ARG may use the ones declared before it.
      args.set(k!, (v ?? '').replace(/\$\{(\w+)\}/g, (_, name: string) => args.get(name) ?? ''));
    } else if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)!;
      const from = m[1]!.replace(/\$\{(\w+)\}/g, (_, k: string) => args.get(k) ?? '');
      stages.push({ from, ...(m[2] ? { name: m[2] } : {}), body: [] });
    } else {
      if (stages.length === 0) throw new Error(`line ${ins.line}: ${ins.op} before FROM`);
      stages[stages.length - 1]!.body.push(ins);
    }
  }
  return { args, stages };
}

const dockerfile = readFileSync(join(REPO_ROOT, 'deploy/Dockerfile'), 'utf8');
const { args: globalArgs, stages } = parseDockerfile(dockerfile);
const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  engines: { node: string };
  dependencies: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies: Record<string, string>;
};
const final = stages[stages.length - 1]!;
const named = (name: string) => stages.find((s) => s.name === name)!;
const SECRETISH = /(\.pem|\.key|\.p12|\.pfx|id_rsa|id_ed25519|\.env\b|\.npmrc|webhook-tls|admin\.sock|\bdata\/)/i;

/** COPY sources from the build context (not --from=stage). */
function contextSources(stage: Stage): string[] {
  return stage.body
    .filter((i) => i.op === 'COPY' || i.op === 'ADD')
    .filter((i) => !/--from=/.test(i.args))
    .flatMap((i) => {
      const parts = i.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      return parts.slice(0, -1);
    });
}

describe('deploy/Dockerfile', () => {
  test('multi-stage: the pinned Node 24 builds, production deps apart, distroless runtime with that same node', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'deps', 'runtime']);
    // The Node of the image is the one package.json pins for development and tests (the `node` package).
    const pinned = pkg.devDependencies['node']!;
    expect(pinned).toMatch(/^24\.\d+\.\d+$/);
    expect(pkg.engines.node).toContain('>=24');
    expect(globalArgs.get('NODE_VERSION')).toBe(pinned);
    expect(named('build').from).toBe(`node:${pinned}-bookworm-slim`);
    expect(named('deps').from).toBe(`node:${pinned}-bookworm-slim`);
    expect(final.from).toBe('gcr.io/distroless/cc-debian12:nonroot');
    const nodeCopy = final.body.filter((i) => i.op === 'COPY' && i.args.includes('--from=build') && /\/usr\/local\/bin\/node \/nodejs\/bin\/node$/.test(i.args));
    expect(nodeCopy).toHaveLength(1);
    for (const s of stages) expect(s.from).not.toMatch(/:latest$|^[^:]+$/);
    const run = (s: Stage) => s.body.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    expect(run(named('build'))).toMatch(/npm ci\b/);
    expect(run(named('build'))).toContain('tsconfig.build.json');
    expect(final.body.some((i) => i.op === 'RUN')).toBe(false);
  });

  test('the sidecar image holds production dependencies only: no dev, no optional (autocannon), no bench harness', () => {
    const run = (s: Stage) => s.body.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    expect(run(named('deps'))).toMatch(/npm ci\b(?=.*--omit=dev)(?=.*--omit=optional)/);
    expect(run(named('build'))).toMatch(/rm -rf dist\/bench\b/);
    // The load generator is optional: npm installs keep it for `tessera load`, the image leaves it out.
    expect(pkg.dependencies['autocannon']).toBeUndefined();
    expect(pkg.optionalDependencies?.['autocannon']).toBeDefined();
    const fromDeps = final.body.filter((i) => i.op === 'COPY' && i.args.includes('--from=deps'));
    expect(fromDeps.map((i) => i.args)).toEqual(['--from=deps --chown=0:0 /src/node_modules ./node_modules']);
  });

  test('the runtime runs as a numeric non-root user, set after every COPY', () => {
    const users = final.body.filter((i) => i.op === 'USER');
    expect(users).toHaveLength(1);
    const [uid, gid] = users[0]!.args.split(':');
    expect(Number(uid)).toBeGreaterThan(0);
    expect(Number(gid)).toBeGreaterThan(0);
    const lastCopy = Math.max(...final.body.filter((i) => i.op === 'COPY').map((i) => i.line));
    expect(users[0]!.line).toBeGreaterThan(lastCopy);
    // Files stay root-owned, so the process cannot rewrite its own code even without readOnlyRootFilesystem.
    for (const c of final.body.filter((i) => i.op === 'COPY')) expect(c.args).toContain('--chown=0:0');
  });

  test('the ENTRYPOINT is exec form and starts the built tessera CLI with the measured V8 flags', () => {
    const ep = final.body.filter((i) => i.op === 'ENTRYPOINT');
    expect(ep).toHaveLength(1);
    const argv = JSON.parse(ep[0]!.args) as string[];
    expect(argv).toEqual(['/nodejs/bin/node', ...NODE_FLAGS, '/app/dist/cli/tessera.js']);
    expect(`/app/${pkg.bin.tessera}`).toBe(argv.at(-1));
    expect(final.body.find((i) => i.op === 'WORKDIR')?.args).toBe('/app');
    const fromBuild = final.body.filter((i) => i.op === 'COPY' && i.args.includes('--from=build')).map((i) => i.args);
    expect(fromBuild.some((a) => /\/src\/dist \.\/dist$/.test(a))).toBe(true);
    expect(fromBuild.some((a) => /\/src\/proto \.\/proto$/.test(a))).toBe(true);
    expect(final.body.some((i) => i.op === 'COPY' && /--from=deps .*node_modules/.test(i.args))).toBe(true);
  });

  test('every source the build compiles is copied, and every context path exists', () => {
    const tsBuild = JSON.parse(readFileSync(join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    const copied = contextSources(named('build'));
    for (const dir of tsBuild.include) expect(copied, `build stage copies ${dir}`).toContain(dir);
    for (const s of stages) for (const src of contextSources(s)) expect(existsSync(join(REPO_ROOT, src)), src).toBe(true);
  });

  test('no secrets: nothing key-like is copied, nothing is fetched by ADD, the context excludes keys and state', () => {
    for (const s of stages) {
      for (const src of contextSources(s)) expect(src).not.toMatch(SECRETISH);
      expect(s.body.some((i) => i.op === 'ADD')).toBe(false);
      for (const i of s.body) expect(`${i.op} ${i.args}`).not.toMatch(/(PASSWORD|TOKEN|SECRET)=/i);
    }
    const ignore = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const p of ['.git', 'node_modules', 'dist', '**/*.pem', '**/*.key', '**/.env', '**/.npmrc', 'deploy/k8s/install/webhook-tls', '.tessera']) {
      expect(ignore, p).toContain(p);
    }
  });
});
