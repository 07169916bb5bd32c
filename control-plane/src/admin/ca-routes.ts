// The CA's operator routes behind admin.sock: status, the rotation steps (prepare, activate, retire) and the
// offline-root steps (intermediate-csr, install-intermediate). Every install attempt is counted by result and
// reason; a refused one is audited with its code (an installed one is audited by the CA's own events). The same
// routes serve while an offline-root control plane waits for its first intermediate (offline-root-wait.ts).
import type { Counter } from 'prom-client';
import type { Clock } from '../../../common/clock.js';
import { isTesseraError } from '../../../common/errors.js';
import { fingerprintOf } from '../../../common/spiffe/trust-bundle.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import type { CaManager } from '../ca/ca-manager.js';
import { chainValidity } from '../ca/chain-end.js';
import { installRefusalReason } from '../ca/offline-intermediate.js';
import { signingIntermediate } from '../ca/signing-intermediate.js';
import type { AuditLog, InventoryStore } from '../store/store-contract.js';
import type { AdminRoutes } from './admin-socket.js';
import { earlyActivationWarning, type FederationServed } from './early-activation.js';
import { iso, optionalString, requiredString } from './request-fields.js';

export interface CaRouteDeps {
  readonly trustDomain: TrustDomain;
  readonly ca: CaManager;
  readonly inventory: InventoryStore;
  readonly audit: AuditLog;
  readonly clock: Clock;
  /** tessera_ca_intermediate_installs_total. */
  readonly installs?: Counter<'result' | 'reason'>;
  /** The authority the control plane's own served SVID chains to (undefined before it has one). */
  readonly servedAuthority?: () => string | undefined;
  /** Set when a bundle endpoint serves federated peers: an activation soon after the prepare is warned about. */
  readonly federation?: FederationServed;
}

function pendingView(d: CaRouteDeps) {
  const p = d.ca.pendingRequest();
  return p ? { requestedAt: iso(p.createdAtMs) } : null;
}

export async function caStatus(d: CaRouteDeps) {
  const removed = d.ca.removedHistory().map((r) => ({ id: r.id, removedAt: iso(r.removedAtMs) }));
  // An offline-root CA before its first intermediate: nothing signs, nothing is trusted yet.
  if (!d.ca.ready) return { trustDomain: d.trustDomain.name, waiting: true, signingAuthority: null, servedAuthority: null, bundleFingerprints: [], authorities: [], pendingRequest: pendingView(d), removed };
  const snap = d.ca.current();
  const now = d.clock.nowMs();
  const live = await Promise.all(snap.authorities.map((a) => d.inventory.liveByAuthority(a.record.id, now)));
  return {
    trustDomain: d.trustDomain.name,
    waiting: false,
    signingAuthority: snap.signer.authorityId,
    // After an activate, a retired authority: what proxies that missed the prepare still verify (self-signer.ts).
    servedAuthority: d.servedAuthority?.() ?? null,
    bundleFingerprints: snap.bundle.fingerprints(),
    authorities: snap.authorities.map((a, i) => {
      const { count, latestNotAfterMs } = live[i]!;
      const inter = signingIntermediate(a, now).cert;
      const chain = chainValidity(inter, a.root.cert);
      return {
        id: a.record.id,
        state: a.record.state,
        root: a.root.key === null ? 'offline' : 'managed',
        createdAt: iso(a.record.createdAtMs),
        activatedAt: iso(a.record.activatedAtMs),
        retiredAt: iso(a.record.retiredAtMs),
        rootFingerprint: fingerprintOf(a.root.cert),
        rootNotAfter: iso(a.record.rootNotAfterMs),
        intermediateSerial: inter.serialNumber.toLowerCase(),
        // Where its chain ends (the root's NotAfter when that comes first), as issuance, /certs and the gauge say.
        intermediateNotAfter: iso(chain.notAfterMs),
        chainEndsWith: chain.endsWith,
        liveSvids: count,
        lastSvidNotAfter: iso(latestNotAfterMs),
      };
    }),
    pendingRequest: pendingView(d),
    removed,
  };
}

async function install(d: CaRouteDeps, body: Record<string, unknown>) {
  const certPem = requiredString(body, 'certPem');
  const rootPem = requiredString(body, 'rootPem');
  try {
    const done = await d.ca.installIntermediate({ certPem, rootPem, activate: body['activate'] === true });
    d.installs?.inc({ result: 'installed', reason: 'none' });
    return { ...done, notAfter: iso(done.notAfterMs), status: await caStatus(d) };
  } catch (e) {
    const reason = installRefusalReason(e);
    d.installs?.inc({ result: 'refused', reason });
    const code = isTesseraError(e) ? e.code : 'TESSERA_ERR_ISSUANCE_INTERNAL';
    d.audit.record(d.clock.nowMs(), { event: 'ca.intermediate_refused', result: 'refused', code, reason, caller: 'admin.sock', ...(isTesseraError(e) ? { message: e.message } : {}) });
    throw e;
  }
}

export function caRoutes(d: CaRouteDeps): AdminRoutes {
  return {
    'GET /v1/ca': () => caStatus(d),
    'POST /v1/ca/prepare': async () => ({ prepared: (await d.ca.prepare()).id, status: await caStatus(d) }),
    'POST /v1/ca/activate': async (body) => {
      const id = optionalString(body, 'authority');
      // Judged before the step: afterwards the authority is no longer the prepared one.
      const warning = earlyActivationWarning(d.ca, d.federation, id, d.clock.nowMs());
      return { activated: (await d.ca.activate(id)).id, ...(warning ? { warning } : {}), status: await caStatus(d) };
    },
    'POST /v1/ca/retire': async (body) => ({ removed: await d.ca.retire(optionalString(body, 'authority'), body['force'] === true), status: await caStatus(d) }),
    'POST /v1/ca/intermediate-csr': async (body) => {
      const r = await d.ca.requestIntermediate(body['newKey'] === true);
      return { csrPem: r.csrPem, requestedAt: iso(r.requestedAtMs), newKey: r.newKey };
    },
    'POST /v1/ca/install-intermediate': (body) => install(d, body),
  };
}
