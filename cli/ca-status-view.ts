// The CA status as `tessera ca status` prints it, and `ca prepare|activate|retire|install-intermediate` after their
// step: the shape admin.sock's answer must have (checked before printing) and the human-readable table.
import { bool, list, nullable, num, optional, record, str } from './admin-answer.js';

export interface CaStatusView {
  readonly trustDomain: string;
  /** True while an offline-root control plane waits for its first intermediate. */
  readonly waiting?: boolean;
  readonly signingAuthority: string | null;
  /** The authority the control plane's own SVID chains to (absent from a control plane before 2026-12-07). */
  readonly servedAuthority?: string | null;
  readonly bundleFingerprints: readonly string[];
  readonly authorities: readonly {
    readonly id: string;
    readonly state: string;
    /** managed: its key is here and intermediates rotate by themselves; offline: the operator installs them. */
    readonly root?: string;
    readonly rootFingerprint: string;
    readonly rootNotAfter: string;
    /** Where the signing chain ends: the intermediate's NotAfter, or its root's when that comes first. */
    readonly intermediateNotAfter: string;
    /** Whose NotAfter intermediateNotAfter is (absent from a control plane before 2026-12-06). */
    readonly chainEndsWith?: string;
    readonly liveSvids: number;
    readonly lastSvidNotAfter: string | null;
  }[];
  readonly pendingRequest?: { readonly requestedAt: string } | null;
  readonly removed: readonly { readonly id: string; readonly removedAt: string }[];
}

/** What formatCaStatus reads, checked before it does (the rest of the status passes through to --json). */
export const CA_STATUS_SHAPE = record({
  trustDomain: str,
  waiting: optional(bool),
  signingAuthority: nullable(str),
  servedAuthority: optional(nullable(str)),
  authorities: list(
    record({ id: str, state: str, root: optional(str), rootFingerprint: str, rootNotAfter: str, intermediateNotAfter: str, chainEndsWith: optional(str), liveSvids: num, lastSvidNotAfter: optional(nullable(str)) }),
  ),
  pendingRequest: optional(nullable(record({ requestedAt: str }))),
  removed: list(record({ id: str, removedAt: str })),
});

/**
 * Human-readable status, one authority per line; below, when the CA stops signing unless the operator acts: an
 * offline root's intermediate expiry, and a chain that ends with its root (no intermediate of that root can help).
 */
export function formatCaStatus(s: CaStatusView): string {
  if (s.waiting) {
    const next = s.pendingRequest ? `an intermediate request is pending since ${s.pendingRequest.requestedAt}: have the root sign it, then \`tessera ca install-intermediate\`` : 'run `tessera ca intermediate-csr` to start';
    return `trust domain ${s.trustDomain}; root: offline; no intermediate installed yet, nothing is issued (${next})
`;
  }
  // A retired authority keeps signing the control plane's own SVID until it is removed (proxies that missed the prepare reconnect).
  const served = s.servedAuthority && s.servedAuthority !== s.signingAuthority ? `; the control plane's own SVID from ${s.servedAuthority} (retired) until it is removed` : '';
  const lines = [`trust domain ${s.trustDomain}; signing authority ${s.signingAuthority}${served}`, ''];
  lines.push(`${'AUTHORITY'.padEnd(10)}${'STATE'.padEnd(10)}${'ROOT'.padEnd(9)}${'ROOT SHA-256'.padEnd(18)}${'ROOT NOT AFTER'.padEnd(26)}${'INTERMEDIATE NOT AFTER'.padEnd(26)}LIVE SVIDS`);
  for (const a of s.authorities) {
    lines.push(`${a.id.padEnd(10)}${a.state.padEnd(10)}${(a.root ?? 'managed').padEnd(9)}${`${a.rootFingerprint.slice(0, 16)}`.padEnd(18)}${a.rootNotAfter.padEnd(26)}${a.intermediateNotAfter.padEnd(26)}${a.liveSvids}${a.lastSvidNotAfter ? ` (last expires ${a.lastSvidNotAfter})` : ''}`);
  }
  for (const a of s.authorities.filter((x) => x.state !== 'retired')) {
    const offline = a.root === 'offline';
    if (a.chainEndsWith === 'root' || a.intermediateNotAfter === a.rootNotAfter) {
      const how = offline ? 'install an intermediate of a new root' : 'prepare a new root (`tessera ca prepare`)';
      lines.push('', `root: ${offline ? 'offline' : 'managed'} (authority ${a.id}): its signing chain ends ${a.intermediateNotAfter}, when its root expires; no intermediate of this root can sign past it: ${how}, then \`tessera ca activate\` before then`);
    } else if (offline) {
      lines.push('', `root: offline (authority ${a.id}): its intermediate expires ${a.intermediateNotAfter} and is not renewed here; install a new one before then`);
    }
  }
  if (s.pendingRequest) lines.push('', `pending intermediate request since ${s.pendingRequest.requestedAt} (its key is held here; install the signed certificate with \`tessera ca install-intermediate\`)`);
  if (s.removed.length > 0) lines.push('', `removed: ${s.removed.map((r) => `${r.id} at ${r.removedAt}`).join(', ')}`);
  return `${lines.join('\n')}\n`;
}
