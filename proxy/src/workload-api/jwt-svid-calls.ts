// The Workload API's JWT calls (SPIFFE Workload API spec): FetchJWTSVID (asks the control plane, cached per
// audience set until half its lifetime), FetchJWTBundles (a JWKS per trust domain, pushed on every change) and
// ValidateJWTSVID (pure validation against the JWT bundle of the subject's own trust domain).
import * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_METADATA } from '../../../common/contract/error-metadata.js';
import type { JwtBundlesResponseMsg, JwtSvidRequestMsg, JwtSvidResponseMsg, ProtoStructMsg, ValidateJwtSvidRequestMsg, ValidateJwtSvidResponseMsg } from '../../../common/contract/spiffe-workload.js';
import { describeError, isTesseraError, TesseraError } from '../../../common/errors.js';
import { checkAudience } from '../../../common/spiffe/jwt-audience.js';
import { type JwtBundleSet, jwtRefusalReason, validateJwtSvid } from '../../../common/spiffe/jwt-svid.js';
import { jwtBundleJwks } from '../../../common/spiffe/spiffe-bundle.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { MintedJwtSvid } from '../identity/control-plane-client.js';
import { banOf, type OwnBan } from '../identity/control-plane-svid-source.js';
import { StateStreams } from './state-streams.js';

export interface WorkloadJwtSource {
  /** Signs a JWT-SVID of the proxy's identity for these audiences (the control plane). */
  readonly mint: (audience: readonly string[]) => Promise<MintedJwtSvid>;
  readonly bundles: { readonly current: JwtBundleSet; subscribe(listener: () => void): () => void };
  /** The SPIFFE ID the proxy holds now (undefined before the first SVID). */
  readonly ownId: () => string | undefined;
  readonly nowMs: () => number;
  /** Whether the operator banned this SPIFFE ID (the proxy's deny-list): its tokens no longer validate. */
  readonly revoked?: (spiffeId: string) => boolean;
  /**
   * The ban the control plane refused the proxy's own SVID for (its ID or its serial), until another is installed.
   * The deny-list never names the proxy's own ID: a banned proxy's Config/Watch stream is ended, not sent the ban.
   */
  readonly ownBan?: () => OwnBan | undefined;
  readonly onCall?: (call: 'fetch' | 'validate', result: 'ok' | 'refused' | 'failed', reason: string) => void;
}

/** Cached tokens at most (distinct audience sets a pod asks for are few; bound them anyway). */
export const MAX_CACHED_JWT_SVIDS = 256;

/**
 * Tokens per (ID, audience set), reused until half their lifetime has passed, counted on this host's clock from
 * when the token arrived: its iat/exp are the control plane's clock, and compared with this one a host behind by
 * over half the lifetime handed out tokens already expired, one ahead by as much fetched a new one at every call.
 */
export class JwtSvidCache {
  readonly #entries = new Map<string, { readonly token: MintedJwtSvid; readonly reuseUntilMs: number }>();

  static key(spiffeId: string, audience: readonly string[]): string {
    return JSON.stringify([spiffeId, [...new Set(audience)].sort()]);
  }

  get(key: string, nowMs: number): MintedJwtSvid | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (nowMs >= e.reuseUntilMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.token;
  }

  clear(): void {
    this.#entries.clear();
  }

  /** `receivedAtMs`: this host's clock when the token came from the control plane. */
  set(key: string, token: MintedJwtSvid, receivedAtMs: number): void {
    this.#entries.delete(key);
    if (this.#entries.size >= MAX_CACHED_JWT_SVIDS) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { token, reuseUntilMs: receivedAtMs + Math.max(0, token.expiresAtMs - token.issuedAtMs) / 2 });
  }
}

type Value = Record<string, unknown>;
/**
 * Levels of JSON nesting a token's claims may have: each is two message levels of google.protobuf.Value, and
 * protobufjs refuses past 100 when it writes the answer, which failed INTERNAL with no code after the call was
 * counted `ok` (audit 62d F2, 50 levels).
 */
const MAX_CLAIM_DEPTH = 32;
/**
 * A JSON value as google.protobuf.Value. protobufjs defines the well-known types itself with camelCase field
 * names, which keepCase does not change: `stringValue`, not `string_value`.
 */
function protoValue(v: unknown, depth: number): Value {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map((x) => protoValue(x, depth + 1)) } };
  return { structValue: protoStruct(v as Record<string, unknown>, depth + 1) };
}
/** The claims as google.protobuf.Struct; TESSERA_ERR_JWT_SVID_MALFORMED past MAX_CLAIM_DEPTH levels. */
export function protoStruct(o: Record<string, unknown>, depth = 1): ProtoStructMsg {
  if (depth > MAX_CLAIM_DEPTH) throw new TesseraError('TESSERA_ERR_JWT_SVID_MALFORMED', `the claims nest deeper than ${MAX_CLAIM_DEPTH} levels`);
  return { fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, protoValue(v, depth)])) };
}

export function jwtBundlesResponse(set: JwtBundleSet): JwtBundlesResponseMsg {
  const bundles: Record<string, Buffer> = {};
  for (const [td, b] of set) bundles[`spiffe://${td}`] = Buffer.from(JSON.stringify(jwtBundleJwks(b)));
  return { bundles };
}

const status = (code: grpc.status, details: string): Partial<grpc.StatusObject> => ({ code, details, metadata: new grpc.Metadata() });
/**
 * A refusal with its stable code: the message starts with it (docs/identity-lifecycle.md) and, as on the control
 * plane's API, it also travels in the tessera-error-code metadata. The gRPC status is the Workload API spec's,
 * not the catalogue's (a banned subject is InvalidArgument here, as any token that does not validate).
 */
function refusal(code: grpc.status, e: unknown): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (isTesseraError(e)) metadata.set(ERROR_CODE_METADATA, e.code);
  return { code, details: describeError(e), metadata };
}

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => void;
type Stream = grpc.ServerWritableStream<unknown, JwtBundlesResponseMsg>;

export class WorkloadJwtCalls {
  readonly #s: WorkloadJwtSource;
  readonly #cache = new JwtSvidCache();
  /** FetchJWTBundles streams: a client that does not read gets the newest bundles once it drains (state-streams.ts). */
  readonly #streams: StateStreams<Stream>;
  readonly #unsubscribe: () => void;

  constructor(source: WorkloadJwtSource) {
    this.#s = source;
    this.#streams = new StateStreams(() => jwtBundlesResponse(source.bundles.current));
    this.#unsubscribe = source.bundles.subscribe(() => {
      // A cached token may be signed by a key the new bundles no longer hold (an emergency key removal).
      this.#cache.clear();
      this.#streams.pushAll();
    });
  }

  /** The proxy's own trust domain, whose issuer (Tessera's control plane) signs low-S tokens only. */
  #ownDomain(): ReadonlySet<string> {
    const own = this.#s.ownId();
    return new Set(own ? [SpiffeId.parse(own).trustDomain.name] : []);
  }

  get openStreams(): number {
    return this.#streams.size;
  }

  fetchJwtSvid: Unary<JwtSvidRequestMsg, JwtSvidResponseMsg> = (call, cb) => {
    const report = (result: 'ok' | 'refused' | 'failed', reason: string) => this.#s.onCall?.('fetch', result, reason);
    let audience: string[];
    try {
      // Checked here as the control plane checks it, the list as sent (an empty entry refused there is refused here,
      // not dropped): a list it would refuse is not sent (4 MB of audiences were).
      audience = checkAudience(call.request.audience ?? []);
    } catch (e) {
      report('refused', 'no_audience');
      const none = (call.request.audience ?? []).length === 0;
      return cb(refusal(grpc.status.INVALID_ARGUMENT, none ? new TesseraError('TESSERA_ERR_JWT_SVID_AUDIENCE_REQUIRED', 'audience must be specified') : e));
    }
    const own = this.#s.ownId();
    if (!own) {
      report('failed', 'no_identity');
      return cb(status(grpc.status.UNAVAILABLE, 'no identity issued yet; retry'));
    }
    // A workload gets the proxy's own identity only: asking for another one is refused, never signed.
    if (call.request.spiffe_id && call.request.spiffe_id !== own) {
      report('refused', 'foreign_id');
      return cb(status(grpc.status.PERMISSION_DENIED, `no identity issued for ${call.request.spiffe_id}`));
    }
    // Banned (tessera revoke id or serial): no token from the cache either, though it was signed before the ban (a
    // relying party outside the mesh would accept it until exp).
    const banned = () => {
      const ban = this.#bannedOwn(own);
      if (!ban) return false;
      this.#cache.clear();
      report('refused', 'revoked');
      cb(refusal(grpc.status.PERMISSION_DENIED, ban));
      return true;
    };
    if (banned()) return;
    const key = JwtSvidCache.key(own, audience);
    const cached = this.#cache.get(key, this.#s.nowMs());
    const reply = (t: MintedJwtSvid) => cb(null, { svids: [{ spiffe_id: t.spiffeId, svid: t.token, hint: '' }] });
    if (cached) {
      report('ok', 'none');
      return reply(cached);
    }
    this.#s.mint(audience).then(
      (t) => {
        // Signed before a ban the proxy learnt of while the answer travelled: not handed out either.
        if (banned()) return;
        this.#cache.set(key, t, this.#s.nowMs());
        report('ok', 'none');
        reply(t);
      },
      (e: unknown) => {
        // The control plane refused for a ban this proxy has not heard of yet: said as the ban it is.
        const ban = banOf(e);
        if (ban) {
          this.#cache.clear();
          report('refused', 'revoked');
          return cb(refusal(grpc.status.PERMISSION_DENIED, new TesseraError(ban, `the control plane refused a JWT-SVID for ${own}: ${describeError(e)}`)));
        }
        // The control plane's refusal code is named (never a token); the caller retries later.
        const invalid = isTesseraError(e) && (e.details['grpcCode'] === grpc.status.INVALID_ARGUMENT);
        report(invalid ? 'refused' : 'failed', invalid ? 'control_plane_refused' : 'unavailable');
        cb(status(invalid ? grpc.status.INVALID_ARGUMENT : grpc.status.UNAVAILABLE, `could not fetch a JWT-SVID: ${describeError(e)}`));
      },
    );
  };

  fetchJwtBundles = (call: Stream): void => this.#streams.open(call);

  validateJwtSvid: Unary<ValidateJwtSvidRequestMsg, ValidateJwtSvidResponseMsg> = (call, cb) => {
    const report = (result: 'ok' | 'refused', reason: string) => this.#s.onCall?.('validate', result, reason);
    const { audience, svid } = call.request;
    if (!audience) {
      report('refused', 'no_audience');
      return cb(refusal(grpc.status.INVALID_ARGUMENT, new TesseraError('TESSERA_ERR_JWT_SVID_AUDIENCE_REQUIRED', 'audience must be specified')));
    }
    if (!svid) {
      report('refused', 'malformed');
      return cb(refusal(grpc.status.INVALID_ARGUMENT, new TesseraError('TESSERA_ERR_JWT_SVID_MALFORMED', 'svid must be specified')));
    }
    try {
      const v = validateJwtSvid(svid, audience, this.#s.bundles.current, this.#s.nowMs(), undefined, this.#ownDomain());
      // A banned subject: on the deny-list, or this proxy's own ID when the control plane refused it as banned (a
      // serial ban is of one SVID, not of the ID: other holders' tokens of the ID still validate).
      const sub = v.spiffeId.toString();
      if (this.#s.revoked?.(sub) || (sub === this.#s.ownId() && this.#s.ownBan?.() === 'TESSERA_ERR_REVOCATION_ID_BANNED')) {
        report('refused', 'revoked');
        return cb(refusal(grpc.status.INVALID_ARGUMENT, new TesseraError('TESSERA_ERR_REVOCATION_ID_BANNED', `${v.spiffeId} is revoked (tessera revoke id)`)));
      }
      const claims = protoStruct(v.claims);
      report('ok', 'none');
      cb(null, { spiffe_id: v.spiffeId.toString(), claims });
    } catch (e) {
      report('refused', jwtRefusalReason(e));
      cb(refusal(grpc.status.INVALID_ARGUMENT, e));
    }
  };

  /** Why the proxy's own identity may not have JWT-SVIDs now: its ID banned, or its current SVID's serial. */
  #bannedOwn(own: string): TesseraError | undefined {
    const ban = this.#s.revoked?.(own) ? 'TESSERA_ERR_REVOCATION_ID_BANNED' : this.#s.ownBan?.();
    if (ban === 'TESSERA_ERR_REVOCATION_ID_BANNED') return new TesseraError(ban, `${own} is revoked (tessera revoke id)`);
    if (ban) return new TesseraError(ban, `the serial of this proxy's SVID is revoked (tessera revoke serial); no JWT-SVID until a new SVID is attested`);
    return undefined;
  }

  /** Ends the bundle streams (status OK) and stops listening for bundle changes. */
  close(): void {
    this.#unsubscribe();
    this.#streams.endAll();
  }
}
