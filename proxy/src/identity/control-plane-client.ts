// The proxy's gRPC client of the control plane: Identity/SignSvid (attestation over server-authenticated TLS,
// renewal over mTLS with the current SVID), the Config/Watch stream and the Discovery calls (Watch, Register). One
// channel per (client SVID, trust roots) generation; the control plane's own SVID is checked by SPIFFE ID, never by
// hostname.
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../common/clock.js';
import type { ConfigSnapshotMsg } from '../../../common/contract/config-v1.js';
import type { DiscoveryUpdateMsg, DiscoveryWatchRequestMsg, RegisterRequestMsg, RegisterResponseMsg } from '../../../common/contract/discovery-v1.js';
import { ERROR_CODE_METADATA } from '../../../common/contract/error-metadata.js';
import type { MintJwtSvidResponseMsg, SignSvidRequestMsg, SignSvidResponseMsg } from '../../../common/contract/identity-v1.js';
import { TesseraError } from '../../../common/errors.js';
import type { TrustBundleSet } from '../../../common/spiffe/trust-bundle.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { loadTesseraServices } from '../../../shared-io/proto-loader.js';
import type { AttestationEvidence } from './attestation-evidence.js';
import { channelOptions, controlPlaneCredentials } from './control-plane-credentials.js';
import type { IssuedSvid, SignedSvidRaw, SvidSigner } from './control-plane-svid-source.js';
import type { StreamCallbacks, StreamHandle } from './reconnecting-stream.js';

export interface ControlPlaneClientOptions {
  /** host:port of the control plane's gRPC listener. */
  readonly address: string;
  /** Whose control-plane ID to require: spiffe://<td>/tessera/control-plane. */
  readonly trustDomain: TrustDomain;
  /** The authorities to verify the control plane with, read at each new channel (bootstrap, then live). */
  readonly bundles: () => TrustBundleSet;
  readonly clock: Clock;
  /** Deadline of a SignSvid call. */
  readonly callTimeoutMs?: number;
}

interface Channel {
  readonly key: string;
  readonly identity: grpc.Client & Record<string, (...a: unknown[]) => unknown>;
  readonly config: grpc.Client & Record<string, (...a: unknown[]) => unknown>;
  readonly discovery: grpc.Client & Record<string, (...a: unknown[]) => unknown>;
}

/** Largest Discovery/Watch update accepted (a full snapshot of tens of thousands of endpoints). */
export const DISCOVERY_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** An open Discovery/Register call: requests go out with send(); end() half-closes it gracefully. */
export interface RegisterStream extends StreamHandle {
  send(req: RegisterRequestMsg): void;
  end(): void;
}

export class ControlPlaneClient implements SvidSigner {
  readonly #o: ControlPlaneClientOptions;
  readonly #Identity: grpc.ServiceClientConstructor;
  readonly #Config: grpc.ServiceClientConstructor;
  readonly #Discovery: grpc.ServiceClientConstructor;
  #channels = new Map<string, Channel>();

  constructor(opts: ControlPlaneClientOptions) {
    this.#o = opts;
    const services = loadTesseraServices();
    this.#Identity = services.identity;
    this.#Config = services.config;
    this.#Discovery = services.discovery;
  }

  attest(csrDer: Buffer, evidence: AttestationEvidence): Promise<SignedSvidRaw> {
    const req: SignSvidRequestMsg = evidence.kind === 'join_token' ? { csr: csrDer, join_token: evidence.token } : { csr: csrDer, k8s_sa_token: evidence.token };
    return this.#sign(this.#channel(undefined), req);
  }

  renew(csrDer: Buffer, current: IssuedSvid): Promise<SignedSvidRaw> {
    return this.#sign(this.#channel(current), { csr: csrDer });
  }

  /** A JWT-SVID for `current`'s own SPIFFE ID (mTLS with it), for these audiences; ttlSeconds 0 = the default. */
  mintJwtSvid(current: IssuedSvid, audience: readonly string[], ttlSeconds = 0): Promise<MintedJwtSvid> {
    const deadline = Date.now() + (this.#o.callTimeoutMs ?? 10_000);
    return new Promise((ok, fail) => {
      this.#channel(current).identity.MintJwtSvid!({ audience: [...audience], ttl_seconds: String(ttlSeconds) }, { deadline }, (err: grpc.ServiceError | null, res: MintJwtSvidResponseMsg) => {
        if (err) return fail(signError(err));
        ok({ token: res.token, spiffeId: res.spiffe_id, issuedAtMs: Number(res.issued_at_unix_ms), expiresAtMs: Number(res.expires_at_unix_ms) });
      });
    });
  }

  /** Opens Config/Watch authenticated by `current`; messages and the final status go to `cb`. */
  watch(current: IssuedSvid, cb: StreamCallbacks<ConfigSnapshotMsg>): StreamHandle {
    const call = this.#channel(current).config.Watch!({}) as grpc.ClientReadableStream<ConfigSnapshotMsg>;
    relay(call, cb);
    return { cancel: () => call.cancel() };
  }

  /** Opens Discovery/Watch for `req`'s services, authenticated by `current`; updates and the final status go to `cb`. */
  watchDiscovery(current: IssuedSvid, req: DiscoveryWatchRequestMsg, cb: StreamCallbacks<DiscoveryUpdateMsg>): StreamHandle {
    const call = this.#channel(current).discovery.Watch!(req) as grpc.ClientReadableStream<DiscoveryUpdateMsg>;
    relay(call, cb);
    return { cancel: () => call.cancel() };
  }

  /** Opens Discovery/Register (bidi) authenticated by `current`; each RegisterResponse and the final status go to `cb`. */
  register(current: IssuedSvid, cb: StreamCallbacks<RegisterResponseMsg>): RegisterStream {
    const call = this.#channel(current).discovery.Register!() as grpc.ClientDuplexStream<RegisterRequestMsg, RegisterResponseMsg>;
    relay(call, cb);
    return {
      send: (req) => {
        call.write(req);
      },
      end: () => call.end(),
      cancel: () => call.cancel(),
    };
  }

  /** Closes every channel. */
  close(): void {
    for (const c of this.#channels.values()) this.#closeChannel(c);
    this.#channels.clear();
  }

  #channel(svid: IssuedSvid | undefined): Channel {
    const bundles = this.#o.bundles();
    const roots = bundles.bundles().flatMap((b) => b.fingerprints()).join(',');
    const key = `${svid?.serial ?? 'anonymous'}|${roots}`;
    const slot = svid ? 'mtls' : 'anonymous';
    const existing = this.#channels.get(slot);
    if (existing?.key === key) return existing;
    // A new generation (new SVID or new roots): new credentials need a new channel; the old one is closed,
    // which lets calls already on it finish.
    if (existing) this.#closeChannel(existing);
    const creds = controlPlaneCredentials({ bundles, trustDomain: this.#o.trustDomain, clock: this.#o.clock, ...(svid ? { clientSvid: svid } : {}) });
    const ch: Channel = {
      key,
      identity: new this.#Identity(this.#o.address, creds, channelOptions()) as Channel['identity'],
      config: new this.#Config(this.#o.address, creds, channelOptions()) as Channel['config'],
      // A full snapshot of a large mesh passes grpc-js's 4 MiB default; the directory bounds what it holds.
      discovery: new this.#Discovery(this.#o.address, creds, { ...channelOptions(), 'grpc.max_receive_message_length': DISCOVERY_MAX_MESSAGE_BYTES }) as Channel['discovery'],
    };
    this.#channels.set(slot, ch);
    return ch;
  }

  #closeChannel(c: Channel): void {
    c.identity.close();
    c.config.close();
    c.discovery.close();
  }

  #sign(ch: Channel, req: SignSvidRequestMsg): Promise<SignedSvidRaw> {
    // A network deadline: real elapsed time, not the injected (possibly fake) wall clock.
    const deadline = Date.now() + (this.#o.callTimeoutMs ?? 10_000);
    return new Promise((ok, fail) => {
      ch.identity.SignSvid!(req, { deadline }, (err: grpc.ServiceError | null, res: SignSvidResponseMsg) => {
        if (err) return fail(signError(err));
        ok({
          chainDer: res.svid_chain,
          bundles: res.bundles.map((b) => ({ trustDomain: b.trust_domain, authoritiesDer: b.x509_authorities })),
        });
      });
    });
  }
}

/** Hands a call's messages to `cb`, and its end or failure once. */
function relay<T>(call: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>, cb: StreamCallbacks<T>): void {
  let closed = false;
  const close = (err?: unknown) => {
    if (closed) return;
    closed = true;
    cb.onClose(err);
  };
  call.on('data', (m: T) => cb.onMessage(m));
  call.on('error', (e: grpc.ServiceError) => close(signError(e)));
  call.on('end', () => close());
}

export interface MintedJwtSvid {
  readonly token: string;
  readonly spiffeId: string;
  readonly issuedAtMs: number;
  readonly expiresAtMs: number;
}

/** A gRPC failure as a TesseraError naming the status and the control plane's stable code, if it sent one. */
export function signError(e: grpc.ServiceError): TesseraError {
  const status = grpc.status[e.code] ?? String(e.code);
  const code = e.metadata?.get(ERROR_CODE_METADATA)[0];
  return new TesseraError('TESSERA_ERR_IDENTITY_SIGN_FAILED', `${status}${code ? ` ${code}` : ''}: ${e.details}`, { grpcCode: e.code });
}
