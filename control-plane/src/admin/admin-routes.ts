// The operator API behind admin.sock: the CA's routes (ca-routes.ts), join tokens, the SVID inventory, break-glass
// grants, revocation (bans and token revocation) and policy-load status. Thin: each route validates its input and calls one part.
import { MAX_JOIN_TOKEN_TTL_MS } from '../../../common/join-token-ttl.js';
import { TesseraError } from '../../../common/errors.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { PolicyDirSource } from '../../../shared-io/policy-dir-source.js';
import type { Revocations } from '../issuance/revocations.js';
import { checkIssuableId } from '../issuance/svid-policy.js';
import type { BreakGlass } from '../policy/break-glass.js';
import { newJoinToken, tokenIdOf } from '../store/join-token.js';
import type { Ban, TokenStore } from '../store/store-contract.js';
import type { AdminRoutes } from './admin-socket.js';
import { type CaRouteDeps, caRoutes } from './ca-routes.js';
import { iso, optionalMs, optionalString, queryMs, stringField, stringList } from './request-fields.js';

export interface AdminRouteDeps extends CaRouteDeps {
  readonly tokens: TokenStore;
  readonly joinTokensEnabled: boolean;
  readonly breakGlass: BreakGlass;
  readonly revocations: Revocations;
  readonly policies?: PolicyDirSource;
}

export const DEFAULT_TOKEN_TTL_MS = 3_600_000;
export const MAX_TOKEN_TTL_MS = MAX_JOIN_TOKEN_TTL_MS;

function banKind(v: unknown): Ban['kind'] {
  if (v === 'spiffe_id' || v === 'serial') return v;
  throw new TesseraError('TESSERA_ERR_CP_ADMIN_BAD_REQUEST', 'kind must be "spiffe_id" or "serial"');
}

const banView = (b: Ban) => ({ kind: b.kind, value: b.value, reason: b.reason, createdBy: b.createdBy, createdAt: iso(b.createdAtMs), ...(b.notAfterMs !== null ? { notAfter: iso(b.notAfterMs) } : {}) });

export function adminRoutes(d: AdminRouteDeps): AdminRoutes {
  return {
    ...caRoutes(d),
    'POST /v1/tokens': async (body) => {
      if (!d.joinTokensEnabled) throw new TesseraError('TESSERA_ERR_ATTESTATION_DISABLED', 'join-token attestation is disabled in the control plane config');
      const idText = optionalString(body, 'spiffeId');
      if (!idText) throw new TesseraError('TESSERA_ERR_CP_ADMIN_BAD_REQUEST', 'spiffeId is required');
      const id = SpiffeId.parse(idText);
      checkIssuableId(id, d.trustDomain);
      // A token for a banned ID could never be used: say so now rather than at attestation.
      d.revocations.check(id.toString());
      const ttlMs = optionalMs(body, 'ttlMs') ?? DEFAULT_TOKEN_TTL_MS;
      if (ttlMs > MAX_TOKEN_TTL_MS) throw new TesseraError('TESSERA_ERR_CP_ADMIN_BAD_REQUEST', `ttlMs must be at most ${MAX_TOKEN_TTL_MS} (30 days)`);
      const token = newJoinToken();
      const now = d.clock.nowMs();
      const rec = await d.tokens.create(token, id.toString(), now, ttlMs);
      d.audit.record(now, { event: 'token.created', result: 'ok', caller: 'admin.sock', spiffeId: id.toString(), attestedAs: `join_token:${tokenIdOf(rec.hash)}`, expiresAt: iso(rec.expiresAtMs) });
      return { token, tokenId: tokenIdOf(rec.hash), spiffeId: id.toString(), expiresAt: iso(rec.expiresAtMs) };
    },
    'GET /v1/certs': async (_body, query) => {
      const within = queryMs(query, 'expiringWithinMs');
      return (await d.inventory.live(d.clock.nowMs(), within)).map((r) => ({
        serial: r.serial,
        spiffeId: r.spiffeId,
        notBefore: iso(r.notBeforeMs),
        notAfter: iso(r.notAfterMs),
        attestedAs: r.attestedAs,
        issuedAt: iso(r.issuedAtMs),
        authority: r.authorityId,
        kind: r.kind,
        caller: r.caller,
      }));
    },
    'POST /v1/break-glass': async (body) => {
      const g = await d.breakGlass.open({
        to: stringField(body, 'to'),
        from: stringList(body, 'from'),
        durationMs: optionalMs(body, 'forMs') ?? Number.NaN,
        reason: stringField(body, 'reason'),
        createdBy: stringField(body, 'createdBy'),
      });
      return { ...g, expiresAt: iso(g.expiresAtMs), createdAt: iso(g.createdAtMs) };
    },
    'GET /v1/break-glass': () => d.breakGlass.active().map((g) => ({ ...g, expiresAt: iso(g.expiresAtMs) })),
    'GET /v1/revocations': async () => (await d.revocations.list()).map(banView),
    'POST /v1/revocations': async (body) => {
      if (body['force'] !== undefined && typeof body['force'] !== 'boolean') throw new TesseraError('TESSERA_ERR_CP_ADMIN_BAD_REQUEST', 'force must be true or false');
      const r = await d.revocations.ban({ kind: banKind(body['kind']), value: stringField(body, 'value'), reason: stringField(body, 'reason'), createdBy: stringField(body, 'createdBy'), force: body['force'] === true });
      return { ...banView(r.ban), created: r.created, ...(r.ban.kind === 'serial' ? { renewals: r.renewals } : {}) };
    },
    'POST /v1/revocations/lift': async (body) => {
      const ban = await d.revocations.lift(banKind(body['kind']), stringField(body, 'value'), stringField(body, 'createdBy'));
      // The renewals its ban reached stay banned (each is its own ban): say which, so the operator can lift them too.
      const renewals = ban.kind === 'serial' ? (await d.revocations.list()).filter((b) => b.kind === 'serial' && b.reason === `renewed from banned serial ${ban.value}`).map((b) => b.value) : [];
      return { ...banView(ban), ...(ban.kind === 'serial' ? { renewalsStillBanned: renewals } : {}) };
    },
    'POST /v1/tokens/revoke': async (body) => {
      const rec = await d.revocations.revokeToken({
        ...(body['token'] !== undefined ? { token: stringField(body, 'token') } : {}),
        ...(body['tokenId'] !== undefined ? { tokenId: stringField(body, 'tokenId') } : {}),
        reason: stringField(body, 'reason'),
        createdBy: stringField(body, 'createdBy'),
      });
      return { tokenId: tokenIdOf(rec.hash), spiffeId: rec.spiffeId, revokedAt: iso(rec.revokedAtMs), expiresAt: iso(rec.expiresAtMs) };
    },
    'GET /v1/policies': () => ({ loaded: d.policies?.policies?.map((p) => p.name) ?? [], errors: d.policies?.lastErrors ?? [], dir: d.policies ? 'watched' : 'none' }),
  };
}
