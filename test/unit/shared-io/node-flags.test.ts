// The V8 flags of shared-io/node-flags.ts reach every way Tessera starts: the bin's shebang (the Dockerfile's
// ENTRYPOINT is checked in test/unit/deploy/dockerfile.test.ts), and a real node started with them takes them.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { NODE_FLAGS, missingNodeFlags } from '../../../shared-io/node-flags.js';
import { REPO_ROOT } from '../../helpers/run.js';

describe('NODE_FLAGS', () => {
  test('the tessera bin starts node with them (env -S shebang)', () => {
    const first = readFileSync(join(REPO_ROOT, 'cli/tessera.ts'), 'utf8').split('\n')[0];
    expect(first).toBe(`#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
  });

  test('node accepts them and they cap the young generation at 2 × the semi-space size', () => {
    const script = "const v8=require('node:v8');let k=[];for(let i=0;i<2e6;i++){k.push({i,s:'x'+i});if(k.length>20000)k=[]}process.stdout.write(String(v8.getHeapSpaceStatistics().find((s)=>s.space_name==='new_space').space_size))";
    const newSpace = Number(execFileSync(process.execPath, [...NODE_FLAGS, '-e', script], { encoding: 'utf8' }));
    const semiMb = Number(/--max-semi-space-size=(\d+)/.exec(NODE_FLAGS.join(' '))![1]);
    expect(newSpace).toBeGreaterThan(0);
    expect(newSpace).toBeLessThanOrEqual(2 * semiMb * 1024 * 1024);
  });

  test('missingNodeFlags names the flags a process was started without (V8 spells them with - or _)', () => {
    expect(missingNodeFlags([])).toEqual([...NODE_FLAGS]);
    expect(missingNodeFlags(['--inspect', ...NODE_FLAGS])).toEqual([]);
    expect(missingNodeFlags(NODE_FLAGS.map((f) => f.replace(/-/g, '_').replace(/^__/, '--')))).toEqual([]);
  });
});
