// The block `tessera up` prints when the mesh is ready, and the same facts as up.json for scripts and tests.
import { relative } from 'node:path';
import { shellQuote } from '../self-command.js';
import type { LaunchedMesh } from './launch-mesh.js';
import type { MeshSpec } from './mesh-spec.js';

export interface UpCommand {
  readonly name: string;
  readonly description: string;
  readonly command: string;
}

export interface UpState {
  readonly trustDomain: string;
  readonly stateDir: string;
  readonly controlPlane: { readonly grpc: string; readonly admin: string; readonly dashboard: string; readonly dataDir: string };
  readonly workloads: LaunchedMesh['workloads'];
  readonly portMoves: LaunchedMesh['portMoves'];
  readonly commands: readonly UpCommand[];
  readonly pids: readonly number[];
}

/**
 * The printed balancing command: requests, and how many at a time. One at a time, every request goes to the replica
 * with the lowest latency estimate (P2C over peak-EWMA, nothing queued); concurrent ones spread by requests in flight.
 */
const BALANCE_REQUESTS = 20;
const BALANCE_PARALLEL = 10;

/**
 * `self`: the command line that runs this CLI (cli/self-command.ts), never `npx tessera`; paths in the commands are
 * absolute, so that they run as printed from any directory (up.json's are read by scripts run from anywhere).
 */
export function buildState(spec: MeshSpec, mesh: LaunchedMesh, self: string): UpState {
  const commands: UpCommand[] = [];
  const byName = new Map(mesh.workloads.map((w) => [w.name, w]));
  // Only the demo app echoes the request's headers and names its instance: an app of your own command need not.
  const demo = new Set(spec.workloads.filter((w) => w.command === undefined).map((w) => w.name));
  const allowed = new Set<string>();
  // A request per outbound: allowed when a policy lets the source call the destination.
  for (const w of mesh.workloads) {
    for (const o of w.outbound) {
      const dst = byName.get(o.to)!;
      const verdictKnown = Object.values(spec.policies).some((text) => text.includes(`selector: ${dst.spiffeId}`) && text.includes(w.spiffeId));
      if (verdictKnown) allowed.add(`${w.name}->${o.to}`);
      commands.push({
        name: `${w.name}-to-${o.to}`,
        description: verdictKnown
          ? `${w.name} → ${o.to} through both sidecars (allowed${demo.has(o.to) ? `; the answer shows x-forwarded-client-cert with ${w.name}'s ID` : ''})`
          : `${w.name} → ${o.to} (no policy allows it: 403)`,
        command: `curl -s${verdictKnown ? '' : ' -i'} ${o.url}/hello`,
      });
      if (dst.replicas.length > 1 && demo.has(o.to)) {
        commands.push({
          name: `balance-${w.name}-to-${o.to}`,
          description: `${w.name} → ${o.to}, ${BALANCE_REQUESTS} requests ${BALANCE_PARALLEL} at a time: ${w.name}'s sidecar balances them over ${o.to}'s ${dst.replicas.length} replicas (requests per answering instance)`,
          command: `seq ${BALANCE_REQUESTS} | xargs -P ${BALANCE_PARALLEL} -I{} curl -s ${o.url}/hello | grep '"instance"' | sort | uniq -c`,
        });
      }
      if (dst.replicas.length > 1) {
        commands.push({ name: `endpoints-${w.name}-to-${o.to}`, description: `the ${o.to} endpoints ${w.name}'s sidecar discovered (state, latency, requests in flight)`, command: `curl -s ${w.adminUrl}/endpoints` });
      }
      commands.push({
        name: `why-${w.name}-to-${o.to}`,
        description: `why: ask the policy engine about ${w.name} → ${o.to}`,
        command: `${self} policy check --policies ${shellQuote(mesh.policiesDir)} --from ${w.spiffeId} --to ${dst.spiffeId}`,
      });
    }
  }
  const first = mesh.workloads[0]!;
  commands.push({ name: 'metrics', description: `${first.name}'s sidecar metrics`, command: `curl -s ${first.adminUrl}/metrics | grep '^tessera_'` });
  commands.push({ name: 'certs', description: `${first.name}'s SVID as served (serial changes at each rotation)`, command: `curl -s ${first.adminUrl}/certs` });
  commands.push({ name: 'certs-list', description: 'every SVID the control plane issued', command: `${self} certs list --data-dir ${shellQuote(mesh.dataDir)}` });
  return {
    trustDomain: spec.trustDomain,
    stateDir: mesh.stateDir,
    controlPlane: { grpc: mesh.grpc, admin: mesh.adminUrl, dashboard: `${mesh.adminUrl}/dashboard`, dataDir: mesh.dataDir },
    workloads: mesh.workloads,
    portMoves: mesh.portMoves,
    commands,
    pids: mesh.supervisor.pids(),
  };
}

export function renderSummary(spec: MeshSpec, state: UpState, cwd: string): string {
  const rel = (p: string) => relative(cwd, p) || '.';
  const out: string[] = ['', `tessera up — local mesh on loopback, trust domain ${state.trustDomain}`, ''];
  out.push(`  control plane  grpc ${state.controlPlane.grpc}  admin ${state.controlPlane.admin}  data ${rel(state.controlPlane.dataDir)}`);
  out.push(`  dashboard      ${state.controlPlane.dashboard}  (workloads, served SVIDs, CA rotation, denials, grants; live)`);
  for (const w of state.workloads) {
    const count = w.replicas.length;
    out.push(`  ${w.name.padEnd(6)} ${w.spiffeId}  service ${w.service}, ${count} replica${count === 1 ? '' : 's'}`);
    for (const r of w.replicas) {
      const expiry = r.svidNotAfter ? new Date(r.svidNotAfter).toISOString().slice(11, 19) + 'Z' : 'unknown';
      // One replica: its lines as before replicas existed; several: each under its own name.
      const head = count > 1 ? `${r.replica}: ` : '';
      out.push(`         ${head}SVID expires ${expiry}${r.svidSerial ? ` (serial ${r.svidSerial})` : ''}; app ${r.appUrl}, inbound ${r.inbound}, admin ${r.adminUrl}`);
      for (const o of r.outbound) out.push(`         ${head}outbound to ${o.to}: ${o.url}`);
    }
  }
  for (const m of state.portMoves) out.push(`  note: port ${m.wanted} was in use; using ${m.port} instead`);
  out.push('', 'Try it:');
  for (const c of state.commands) out.push(`  # ${c.description}`, `  ${c.command}`);
  out.push(
    '',
    `SVIDs live ${Math.round(spec.svidTtlMs / 1000)}s and renew at about half their lifetime: watch the serial change in /certs.`,
    `State: ${rel(state.stateDir)} (logs in ${rel(state.stateDir)}/logs). Ctrl-C drains and stops everything.`,
    '',
  );
  return out.join('\n');
}
