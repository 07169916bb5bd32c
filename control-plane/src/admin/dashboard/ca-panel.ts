// The dashboard's CA panel: every authority with its state, root and intermediates and the live SVIDs that chain
// to it, and where a rotation stands (prepare → propagate → activate → retire), derived from the states alone so
// the page tells the operator the next step without remembering what was done before.
import { canonicalSerial } from '../../../../common/pki/serial.js';
import type { AuthorityRecord, AuthorityState } from '../../ca/authority.js';
import { chainNotAfterMs } from '../../ca/chain-end.js';

/** What the panel reads of the CA (a CaSnapshot is one). */
export interface CaView {
  readonly authorities: readonly { readonly record: AuthorityRecord }[];
  readonly signer: { readonly authorityId: string; readonly notAfterMs: number; readonly intermediate: { readonly serialNumber: string } };
  /** The authority the control plane's own SVID chains to (issuance/self-signer.ts); absent before it has one. */
  readonly servedAuthority?: string | undefined;
}

export interface IntermediateRow {
  readonly serial: string;
  readonly notAfterMs: number;
  /** The one new SVIDs are signed with. */
  readonly signing: boolean;
}

export interface AuthorityRow {
  readonly id: string;
  readonly state: AuthorityState;
  readonly createdAtMs: number;
  readonly activatedAtMs: number | null;
  readonly retiredAtMs: number | null;
  readonly rootNotAfterMs: number;
  /** Oldest first. */
  readonly intermediates: readonly IntermediateRow[];
  /** Live SVIDs signed by it (null: the inventory could not be read). */
  readonly liveSvids: number | null;
  readonly lastSvidNotAfterMs: number | null;
}

/** The four steps of docs/control-plane.md "CA rotation"; `current` is the one under way (null: none). */
export type RotationStepName = 'prepare' | 'propagate' | 'activate' | 'retire';

export interface RotationStep {
  /** idle: one active authority and nothing else; propagating: a prepared one waits; draining: a retired one waits. */
  readonly phase: 'idle' | 'propagating' | 'draining';
  readonly current: RotationStepName | null;
  /** One sentence: where it stands. */
  readonly summary: string;
  /** One sentence: what to do next, and when. */
  readonly next: string;
  /** The command for the next step, when running one is the next step. */
  readonly command: string | null;
}

export interface CaPanel {
  readonly signer: { readonly authorityId: string; readonly intermediateSerial: string; readonly intermediateNotAfterMs: number };
  /** The authority the control plane's own SVID chains to: a retired one until it is removed. */
  readonly servedAuthority: string | null;
  /** Active first, then prepared, then retired. */
  readonly authorities: readonly AuthorityRow[];
  readonly rotation: RotationStep;
}

export interface LiveCount {
  readonly count: number;
  readonly latestNotAfterMs: number | null;
}

const ORDER: Record<AuthorityState, number> = { active: 0, prepared: 1, retired: 2 };

/** `live`: live SVIDs per authority id (undefined when the inventory could not be read). */
export function caPanel(ca: CaView, live: ReadonlyMap<string, LiveCount> | undefined): CaPanel {
  const signingSerial = canonicalSerial(ca.signer.intermediate.serialNumber) ?? ca.signer.intermediate.serialNumber.toLowerCase();
  const authorities = ca.authorities
    .map(({ record: r }): AuthorityRow => {
      const l = live ? (live.get(r.id) ?? { count: 0, latestNotAfterMs: null }) : undefined;
      return {
        id: r.id,
        state: r.state,
        createdAtMs: r.createdAtMs,
        activatedAtMs: r.activatedAtMs ?? null,
        retiredAtMs: r.retiredAtMs ?? null,
        rootNotAfterMs: r.rootNotAfterMs,
        // Each intermediate until its chain ends (its root's NotAfter when that comes first).
        intermediates: r.intermediates.map((i) => ({ serial: i.serial, notAfterMs: chainNotAfterMs(i.notAfterMs, r.rootNotAfterMs), signing: r.id === ca.signer.authorityId && i.serial === signingSerial })),
        liveSvids: l ? l.count : null,
        lastSvidNotAfterMs: l ? l.latestNotAfterMs : null,
      };
    })
    .sort((a, b) => ORDER[a.state] - ORDER[b.state] || a.createdAtMs - b.createdAtMs);
  return {
    signer: { authorityId: ca.signer.authorityId, intermediateSerial: signingSerial, intermediateNotAfterMs: ca.signer.notAfterMs },
    servedAuthority: ca.servedAuthority ?? null,
    authorities,
    rotation: rotationStep(authorities, ca.servedAuthority),
  };
}

/** While a retired authority signs the control plane's own SVID, proxies that missed the prepare can still reconnect. */
function servedNote(retired: readonly AuthorityRow[], served: string | undefined): string {
  return served !== undefined && retired.some((a) => a.id === served) ? ` The control plane's own SVID stays signed by ${served} until then, so a proxy that missed the prepare can still reconnect and get the new root.` : '';
}

const when = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

/**
 * Where a rotation stands, from the authorities' states (a prepared authority outranks a draining retired one);
 * `served`: the authority the control plane's own SVID chains to.
 */
export function rotationStep(authorities: readonly AuthorityRow[], served?: string): RotationStep {
  const prepared = authorities.find((a) => a.state === 'prepared');
  const retired = authorities.filter((a) => a.state === 'retired');
  const active = authorities.find((a) => a.state === 'active');
  const draining = retired.length > 0 ? ` Retired ${retired.map((a) => a.id).join(', ')} still ${retired.length === 1 ? 'waits' : 'wait'} for removal.` : '';
  if (prepared) {
    return {
      phase: 'propagating',
      current: 'propagate',
      summary: `Authority ${prepared.id} is prepared: its root is in the bundle but it signs nothing yet; ${active?.id ?? 'none'} signs.${draining}`,
      next: 'When every relying party trusts the new root (connected proxies within a second, offline ones on reconnect, hand-copied bundle.pem files once refreshed), activate it.',
      command: 'tessera ca activate',
    };
  }
  if (retired.length > 0) {
    const inUse = retired.filter((a) => a.liveSvids === null || a.liveSvids > 0);
    if (inUse.length === 0) {
      return {
        phase: 'draining',
        current: 'retire',
        summary: `Retired ${retired.map((a) => a.id).join(', ')}: no live SVID chains to ${retired.length === 1 ? 'it' : 'them'} any more.`,
        next: 'The control plane removes it at its next upkeep (every few seconds), or now with the command.',
        command: 'tessera ca retire',
      };
    }
    const counts = inUse.map((a) => (a.liveSvids === null ? `${a.id} (live SVIDs unknown)` : `${a.id} (${a.liveSvids} live SVID${a.liveSvids === 1 ? '' : 's'})`));
    const last = Math.max(...inUse.map((a) => a.lastSvidNotAfterMs ?? 0));
    return {
      phase: 'draining',
      current: 'retire',
      summary: `Retired ${counts.join(', ')} stays in the bundle while SVIDs it signed are live; ${active?.id ?? 'none'} signs.${servedNote(retired, served)}`,
      next: last > 0 ? `Nothing to do: it is removed by itself once its last SVID expires (${when(last)}); proxies move over as they renew.` : 'Nothing to do: it is removed by itself once its last SVID expires.',
      command: null,
    };
  }
  return {
    phase: 'idle',
    current: null,
    summary: `One authority, ${active?.id ?? 'none'}, signs; no rotation is under way.`,
    next: 'To rotate the CA, prepare a new authority first.',
    command: 'tessera ca prepare',
  };
}
