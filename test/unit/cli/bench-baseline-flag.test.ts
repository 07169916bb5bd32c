// `tessera bench --baseline-cli F`: another build's CLI, made absolute, for the mesh scenarios (and all); a missing
// file or another scenario is a usage error naming the flag. The mesh rows then include the baseline pair, with a
// headline comparing this build to it per round and a note naming the file.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Measurement } from '../../../bench/harness/scenario.js';
import { DIRECT, NGINX, TESSERA, TESSERA_BASELINE, TESSERA_H1, baselineHeadlines, baselineNote, meshRows } from '../../../bench/scenarios/mesh.js';
import { parseArgs } from '../../../cli/args.js';
import { benchCommand } from '../../../cli/commands/bench.js';
import { baselineCliFlag } from '../../../cli/run/bench.js';

let dir: string;
let cli: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-baseline-'));
  cli = join(dir, 'tessera.js');
  await writeFile(cli, '');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const parse = (scenario: string, ...argv: string[]) => parseArgs([scenario, ...argv], benchCommand.flags ?? {});

describe('bench --baseline-cli', () => {
  test('absent: none; given for mesh, mesh-cpr or all: the file, absolute', () => {
    expect(baselineCliFlag(parse('mesh'), 'mesh')).toBeUndefined();
    expect(baselineCliFlag(parse('mesh', '--baseline-cli', cli), 'mesh')).toBe(cli);
    expect(baselineCliFlag(parse('mesh-cpr', '--baseline-cli', relative(process.cwd(), cli)), 'mesh-cpr')).toBe(cli);
    expect(baselineCliFlag(parse('all', '--baseline-cli', cli), 'all')).toBe(cli);
  });

  test('a missing file, a directory, or a scenario without a pair row: a usage error naming the flag', () => {
    const usage = (text: string) => expect.objectContaining({ code: 'TESSERA_ERR_CLI_USAGE', message: expect.stringContaining(text) });
    expect(() => baselineCliFlag(parse('mesh', '--baseline-cli', join(dir, 'nope.js')), 'mesh')).toThrow(usage('--baseline-cli: no file at'));
    expect(() => baselineCliFlag(parse('mesh', '--baseline-cli', dir), 'mesh')).toThrow(usage('--baseline-cli: no file at'));
    expect(() => baselineCliFlag(parse('handshake', '--baseline-cli', cli), 'handshake')).toThrow(usage('--baseline-cli applies to mesh and mesh-cpr'));
  });
});

describe('the baseline row', () => {
  test('in both mesh modes right after this build, only when asked for', () => {
    expect(meshRows('keep-alive')).not.toContain(TESSERA_BASELINE);
    expect(meshRows('conn-per-request', true)).toEqual([DIRECT, TESSERA, TESSERA_BASELINE, TESSERA_H1, expect.any(String), expect.any(String), expect.any(String)]);
    const all = meshRows('keep-alive', true);
    expect(all.indexOf(TESSERA_BASELINE)).toBe(all.indexOf(TESSERA) + 1);
    expect(all).toHaveLength(12);
  });

  test('headline: this build against the baseline per round and per side; a note names the baseline file', () => {
    const m = (variant: string, round: number, client: number, server: number): Measurement => ({ variant, round, reqPerSec: 1000, p50Ms: 1, p99Ms: 2, p999Ms: 3, cpuUsPerReqClient: client, cpuUsPerReqServer: server, cpuUsPerReqProxies: client + server, errors: 0, non2xx: 0 });
    const ms = [m(TESSERA, 1, 14, 16), m(TESSERA_BASELINE, 1, 15, 17), m(NGINX, 1, 14, 14), m(TESSERA, 2, 15, 15), m(TESSERA_BASELINE, 2, 16, 17), m(NGINX, 2, 14, 14)];
    expect(baselineHeadlines(ms, [TESSERA, NGINX])).toEqual([]);
    const [h] = baselineHeadlines(ms, [TESSERA, TESSERA_BASELINE, NGINX]);
    expect(h).toContain(`${TESSERA} vs ${TESSERA_BASELINE}`);
    // 30/32 = 0.9375, 30/33 = 0.909
    expect(h).toContain('= 0.92× (0.91–0.94) the tessera pair, baseline build');
    expect(baselineNote(undefined)).toEqual([]);
    expect(baselineNote(cli)[0]).toContain(cli);
  });
});

describe('a baseline pair runs the given build', () => {
  test('both proxies are started from the baseline CLI with the configs this build wrote', async () => {
    const { benchProcesses } = await import('../../../bench/harness/bench-processes.js');
    const { BenchPki, CLIENT_ID, SERVER_ID } = await import('../../../bench/harness/bench-pki.js');
    const { startTesseraPair } = await import('../../../bench/peers/topology.js');
    const work = join(dir, 'work');
    // A stand-in for another build: records how it was started, says ready, and waits to be stopped.
    const fake = join(dir, 'baseline-tessera.js');
    await writeFile(
      fake,
      `require('fs').writeFileSync(${JSON.stringify(dir)} + '/argv-' + process.pid, JSON.stringify(process.argv.slice(1)));\nconsole.log('tessera proxy: ready');\nsetInterval(() => {}, 1000);\nprocess.on('SIGTERM', () => process.exit(0));\n`,
    );
    const { mkdir, readdir, readFile } = await import('node:fs/promises');
    await mkdir(work, { recursive: true });
    const group = benchProcesses(work);
    try {
      await mkdir(join(work, 'pki'), { recursive: true });
      const pki = await BenchPki.create(join(work, 'pki'));
      const env = { group, pki, client: await pki.writeLeaf('client', CLIENT_ID), server: await pki.writeLeaf('server', SERVER_ID), workDir: work, binaries: { nginx: null, haproxy: null, h2load: null, notes: [] }, tesseraCli: join(dir, 'not-this-build.js') };
      await startTesseraPair(env, 1, { name: 'tessera-baseline-pair', cli: fake });
      const runs = await Promise.all((await readdir(dir)).filter((f) => f.startsWith('argv-')).map(async (f) => JSON.parse(await readFile(join(dir, f), 'utf8')) as string[]));
      expect(runs).toHaveLength(2);
      for (const argv of runs) {
        expect(argv[0]).toBe(fake);
        expect(argv.slice(1, 3)).toEqual(['proxy', '--config']);
        expect(argv[3]).toMatch(/tessera-baseline-pair.*(client|server)\.yaml$/);
      }
    } finally {
      await group.stopAll();
    }
  }, 30_000);
});
