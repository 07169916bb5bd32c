// Wires authorization.policiesDir into the policy holder: loads it once (a bad directory fails the start), then
// reloads on change, counting and logging every reload and refusal.
import type { Logger } from 'pino';
import { PolicyDirSource } from '../../../shared-io/policy-dir-source.js';
import type { ProxyMetrics } from '../telemetry/metrics.js';
import type { PolicyHolder } from './policy-holder.js';

export function openPolicyDir(dir: string, policies: PolicyHolder, metrics: ProxyMetrics, log: Logger): { stop(): void } {
  const source = new PolicyDirSource({
    dir,
    onPolicies: (p) => {
      policies.setPolicies(p);
      metrics.policyUpdate('success');
      log.info({ policies: p.length }, 'policies reloaded');
    },
    onErrors: (errors) => {
      metrics.policyUpdate('refused');
      for (const e of errors) log.warn({ file: e.file, ...(e.line !== undefined ? { line: e.line } : {}), code: e.code }, e.message);
    },
  });
  policies.setPolicies(source.loadInitial());
  // Counted as the first SVID is (audit 61d I8: success stayed 0 until the first reload).
  metrics.policyUpdate('success');
  source.start();
  return source;
}
