// docs/metrics.md is the metrics list for both processes: every tessera_* metric the control plane registers is
// named there (13 were only in control-plane.md's prose).
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { expect, test } from 'vitest';
import { createMetrics } from '../../../control-plane/src/admin/metrics.js';

test('every tessera_* metric of the control plane is in docs/metrics.md', async () => {
  const doc = readFileSync(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
  const registry = new Registry();
  createMetrics(registry, { version: '0.0.0-test', node: process.version, openssl: process.versions.openssl });
  const names = (await registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => n.startsWith('tessera_'));
  expect(names.length).toBeGreaterThan(25);
  expect(names.filter((n) => !doc.includes(`\`${n}\``))).toEqual([]);
});
