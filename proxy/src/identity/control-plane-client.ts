// The proxy's gRPC client of the control plane: Identity/SignSvid (attestation over server-authenticated TLS,
// renewal over mTLS with the current SVID), the Config/Watch stream, Config/Report and the Discovery calls (Watch,
// Register). Every call goes to the address the shared ControlPlaneEndpoints names: a unary call tries the next
// replica within its deadline, a stream reports a failure (its owner reconnects after the endpoints' backoff), and
// an open stream on an address that is no longer current is closed so that its owner reopens it there. One channel
// per (address, client SVID, trust roots); the control plane's own SVID is checked by SPIFFE ID, never by hostname.
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../common/clock.js';
import type { ConfigSnapshotMsg, ProxyReportMsg, ReportAckMsg } from '../../../common/contract/config-v1.js';
import type { DiscoveryUpdateMsg, DiscoveryWatchRequestMsg, RegisterRequestMsg, RegisterResponseMsg } from '../../../common/contract/discovery-v1.js';
import { ERROR_CODE_METADATA } from '../../../common/contract/error-metadata.js';
import type { MintJwtSvidResponseMsg, SignSvidRequestMsg, SignSvidResponseMsg, TpmChallengeResponseMsg } from '../../../common/contract/identity-v1.js';
import { TesseraError } from '../../../common/errors.js';
import type { TrustBundleSet } from '../../../common/spiffe/trust-bundle.js';
import type { TrustDomain } from '../../../common/spiffe/trust-domain.js';
import { loadTesseraServices } from '../../../shared-io/proto-loader.js';
import type { AttestationEvidence } from './attestation-evidence.js';
import { parseHttpDate } from './clock-offset.js';
import { channelOptions, controlPlaneCredentials } from './control-plane-credentials.js';
import { ControlPlaneEndpoints } from './control-plane-endpoints.js';
import type { IssuedSvid, SignedSvidRaw, SvidSigner } from './control-plane-svid-source.js';
import type { StreamCallbacks, StreamHandle } from './reconnecting-stream.js';

export interface ControlPlaneClientOptions {
  /** host:port of the control plane's gRPC listener (one fixed address: `tessera svid fetch`, tests). */
  readonly address?: string;
  /** The replicas and the one to use now, shared by every control-plane call of the proxy; wins over `address`. */
  readonly endpoints?: ControlPlaneEndpoints;
  /** Whose control-plane ID to require: spiffe://<td>/tessera/control-plane. */
  readonly trustDomain: TrustDomain;
  /** The authorities to verify the control plane with, read at each new channel (bootstrap, then live). */
  readonly bundles: () => TrustBundleSet;
  readonly clock: Clock;
  /**
   * The clock of the calls' deadlines: grpc-js measures a deadline against Date.now(), so in production this is
   * systemClock (Date.now), apart from `clock`, the wall clock a test may move.
   */
  readonly deadlineClock: Clock;
  /** Deadline of a SignSvid call (all the replicas it tries share it). */
  readonly callTimeoutMs?: number;
}

interface Channel {
  readonly key: string;
  readonly address: string;
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

/** A stream open now, on `address`; move() ends it so that its owner reopens it on the current address. */
interface OpenCall {
  readonly address: string;
  move(): void;
}

export class ControlPlaneClient implements SvidSigner {
  readonly #o: ControlPlaneClientOptions;
  readonly #endpoints: ControlPlaneEndpoints;
  readonly #Identity: grpc.ServiceClientConstructor;
  readonly #Config: grpc.ServiceClientConstructor;
  readonly #Discovery: grpc.ServiceClientConstructor;
  /** By `${slot}|${address}`. */
  #channels = new Map<string, Channel>();
  readonly #open = new Set<OpenCall>();
  readonly #unsubscribe: () => void;

  constructor(opts: ControlPlaneClientOptions) {
    this.#o = opts;
    if (!opts.endpoints && !opts.address) throw new RangeError('a control-plane address or endpoints are needed');
    this.#endpoints = opts.endpoints ?? new ControlPlaneEndpoints({ addresses: [opts.address!], clock: opts.clock });
    const services = loadTesseraServices();
    this.#Identity = services.identity;
    this.#Config = services.config;
    this.#Discovery = services.discovery;
    // A stream on a replica that is no longer current moves (a unary failover, a DNS change, a failback).
    this.#unsubscribe = this.#endpoints.subscribe((e) => {
      for (const c of [...this.#open]) if (c.address !== e.to) c.move();
    });
  }

  get endpoints(): ControlPlaneEndpoints {
    return this.#endpoints;
  }

  async attest(csrDer: Buffer, evidence: AttestationEvidence): Promise<SignedSvidRaw> {
    const req: SignSvidRequestMsg =
      evidence.kind === 'join_token' ? { csr: csrDer, join_token: evidence.token }
      : evidence.kind === 'kubernetes_token' ? { csr: csrDer, k8s_sa_token: evidence.token }
      // The challenge and SignSvid may reach different replicas: they share the nonce key and the spent record.
      : { csr: csrDer, tpm: await evidence.source.evidence(csrDer, () => this.#tpmChallenge()) };
    return this.#sign(undefined, req);
  }

  renew(csrDer: Buffer, current: IssuedSvid): Promise<SignedSvidRaw> {
    return this.#sign(current, { csr: csrDer });
  }

  /** A JWT-SVID for `current`'s own SPIFFE ID (mTLS with it), for these audiences; ttlSeconds 0 = the default. */
  mintJwtSvid(current: IssuedSvid, audience: readonly string[], ttlSeconds = 0): Promise<MintedJwtSvid> {
    return this.#unary(
      'TESSERA_ERR_JWT_SVID_UNAVAILABLE',
      current,
      (ch, deadline) =>
        new Promise((ok, fail) => {
          ch.identity.MintJwtSvid!({ audience: [...audience], ttl_seconds: String(ttlSeconds) }, { deadline }, (err: grpc.ServiceError | null, res: MintJwtSvidResponseMsg) => {
            if (err) return fail(err);
            ok({ token: res.token, spiffeId: res.spiffe_id, issuedAtMs: Number(res.issued_at_unix_ms), expiresAtMs: Number(res.expires_at_unix_ms) });
          });
        }),
    );
  }

  /** Identity/TpmChallenge (anonymous, like attestation): a fresh nonce and the PCRs to quote. */
  #tpmChallenge(): Promise<TpmChallengeResponseMsg> {
    // Part of attestation: its failure is the SVID request's.
    return this.#unary(
      'TESSERA_ERR_IDENTITY_SIGN_FAILED',
      undefined,
      (ch, deadline) =>
        new Promise((ok, fail) => {
          ch.identity.TpmChallenge!({}, { deadline }, (err: grpc.ServiceError | null, res: TpmChallengeResponseMsg) => (err ? fail(err) : ok(res)));
        }),
    );
  }

  /** Config/Report over mTLS with `current` (the control plane takes the reporting ID from it); resolves with the ack. */
  report(current: IssuedSvid, msg: ProxyReportMsg): Promise<ReportAckMsg> {
    return this.#unary(
      'TESSERA_ERR_REPORT_FAILED',
      current,
      (ch, deadline) =>
        new Promise((ok, fail) => {
          ch.config.Report!(msg, { deadline }, (err: grpc.ServiceError | null, res: ReportAckMsg) => (err ? fail(err) : ok(res)));
        }),
    );
  }

  /** Opens Config/Watch authenticated by `current`; messages and the final status go to `cb`. */
  watch(current: IssuedSvid, cb: StreamCallbacks<ConfigSnapshotMsg>): StreamHandle {
    const address = this.#endpoints.current();
    const call = this.#channel(current, address).config.Watch!({}) as grpc.ClientReadableStream<ConfigSnapshotMsg>;
    return this.#relay(address, call, cb);
  }

  /** Opens Discovery/Watch for `req`'s services, authenticated by `current`; updates and the final status go to `cb`. */
  watchDiscovery(current: IssuedSvid, req: DiscoveryWatchRequestMsg, cb: StreamCallbacks<DiscoveryUpdateMsg>): StreamHandle {
    const address = this.#endpoints.current();
    const call = this.#channel(current, address).discovery.Watch!(req) as grpc.ClientReadableStream<DiscoveryUpdateMsg>;
    return this.#relay(address, call, cb);
  }

  /** Opens Discovery/Register (bidi) authenticated by `current`; each RegisterResponse and the final status go to `cb`. */
  register(current: IssuedSvid, cb: StreamCallbacks<RegisterResponseMsg>): RegisterStream {
    const address = this.#endpoints.current();
    const call = this.#channel(current, address).discovery.Register!() as grpc.ClientDuplexStream<RegisterRequestMsg, RegisterResponseMsg>;
    const handle = this.#relay(address, call, cb);
    return {
      address,
      cancel: handle.cancel,
      send: (req) => {
        call.write(req);
      },
      end: () => {
        // Our own half-close: the end that follows answers it, it is no replica going away.
        handle.halfClosed();
        call.end();
      },
    };
  }

  /**
   * Whether the control plane at `address` answers: a TLS handshake that proves its SPIFFE ID, on a channel of its
   * own (closed after), within `timeoutMs`. The endpoints' failback asks this of the preferred address.
   */
  probe(address: string, timeoutMs = 5_000): Promise<boolean> {
    const creds = controlPlaneCredentials({ bundles: this.#o.bundles(), trustDomain: this.#o.trustDomain, clock: this.#o.clock });
    const client = new this.#Identity(address, creds, channelOptions());
    return new Promise((ok) => {
      client.waitForReady(this.#o.deadlineClock.nowMs() + timeoutMs, (err) => {
        client.close();
        ok(!err);
      });
    });
  }

  /** Closes every channel. */
  close(): void {
    this.#unsubscribe();
    for (const c of this.#channels.values()) this.#closeChannel(c);
    this.#channels.clear();
  }

  #channel(svid: IssuedSvid | undefined, address: string): Channel {
    const bundles = this.#o.bundles();
    const roots = bundles.bundles().flatMap((b) => b.fingerprints()).join(',');
    const key = `${svid?.serial ?? 'anonymous'}|${roots}`;
    const slot = svid ? 'mtls' : 'anonymous';
    const existing = this.#channels.get(`${slot}|${address}`);
    if (existing?.key === key) return existing;
    // A new generation (new SVID or new roots): new credentials need new channels; the old ones (of every
    // address) are closed, which lets calls already on them finish.
    for (const [k, c] of [...this.#channels]) if (k.startsWith(`${slot}|`) && c.key !== key) this.#dropChannel(k, c);
    const creds = controlPlaneCredentials({ bundles, trustDomain: this.#o.trustDomain, clock: this.#o.clock, ...(svid ? { clientSvid: svid } : {}) });
    const ch: Channel = {
      key,
      address,
      identity: new this.#Identity(address, creds, channelOptions()) as Channel['identity'],
      config: new this.#Config(address, creds, channelOptions()) as Channel['config'],
      // A full snapshot of a large mesh passes grpc-js's 4 MiB default; the directory bounds what it holds.
      discovery: new this.#Discovery(address, creds, { ...channelOptions(), 'grpc.max_receive_message_length': DISCOVERY_MAX_MESSAGE_BYTES }) as Channel['discovery'],
    };
    this.#channels.set(`${slot}|${address}`, ch);
    return ch;
  }

  #dropChannel(key: string, c: Channel): void {
    this.#channels.delete(key);
    this.#closeChannel(c);
  }

  #closeChannel(c: Channel): void {
    c.identity.close();
    c.config.close();
    c.discovery.close();
  }

  /**
   * `address` failed: the endpoints move on, and its channels go (a channel that failed to connect waits out
   * gRPC's own reconnect backoff, up to minutes; a fresh one dials at once when the address is picked again).
   */
  #failed(address: string, error: string): void {
    for (const [k, c] of [...this.#channels]) if (c.address === address) this.#dropChannel(k, c);
    this.#endpoints.failed(address, error);
  }

  #sign(svid: IssuedSvid | undefined, req: SignSvidRequestMsg): Promise<SignedSvidRaw> {
    return this.#unary(
      'TESSERA_ERR_IDENTITY_SIGN_FAILED',
      svid,
      (ch, deadline) =>
        new Promise((ok, fail) => {
          // The answer's timing and its `date` header (the control plane's clock) place the SVID's times on ours.
          const sentAtMs = this.#o.clock.nowMs();
          let controlPlaneDateMs: number | undefined;
          const call = ch.identity.SignSvid!(req, { deadline }, (err: grpc.ServiceError | null, res: SignSvidResponseMsg) => {
            if (err) return fail(err);
            ok({
              chainDer: res.svid_chain,
              bundles: res.bundles.map((b) => ({ trustDomain: b.trust_domain, authoritiesDer: b.x509_authorities })),
              timing: { sentAtMs, receivedAtMs: this.#o.clock.nowMs(), controlPlaneDateMs },
            });
          }) as grpc.ClientUnaryCall;
          call.on('metadata', (md: grpc.Metadata) => {
            controlPlaneDateMs = parseHttpDate(md.get('date')[0]);
          });
        }),
    );
  }

  /**
   * One unary call: on the current address, then, while replicas are unreachable, on the next ones in order, all
   * within one deadline (each attempt gets an equal share of what is left, so a black-holed replica cannot eat it
   * all). An answer from a replica, a refusal included, ends it. A failure carries the call's own `code`.
   */
  async #unary<T>(code: UnaryCallCode, svid: IssuedSvid | undefined, invoke: (ch: Channel, deadline: number) => Promise<T>): Promise<T> {
    // A network deadline: on grpc-js's clock (deadlineClock), not the injected (possibly fake) wall clock.
    const clock = this.#o.deadlineClock;
    const deadline = clock.nowMs() + (this.#o.callTimeoutMs ?? 10_000);
    const order = this.#endpoints.order();
    let last: grpc.ServiceError | undefined;
    for (let i = 0; i < order.length; i++) {
      const address = order[i]!;
      const now = clock.nowMs();
      if (i > 0 && now >= deadline) break;
      try {
        return await invoke(this.#channel(svid, address), now + Math.max(1, (deadline - now) / (order.length - i)));
      } catch (e) {
        const err = e as grpc.ServiceError;
        if (typeof err.code !== 'number' || !replicaUnreachable(err)) throw typeof err.code === 'number' ? grpcCallError(err, code) : e;
        last = err;
        this.#failed(address, describeGrpc(err));
      }
    }
    throw grpcCallError(last!, code);
  }

  /** Hands a call's messages to `cb` and its end or failure once; tells the endpoints when the replica failed. */
  #relay<T>(address: string, call: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>, cb: StreamCallbacks<T>): StreamHandle & { halfClosed(): void } {
    let closed = false;
    /** Ended by this side (cancel, half-close, move): the end says nothing about the replica. */
    let ours = false;
    const close = (err?: unknown) => {
      if (closed) return;
      closed = true;
      this.#open.delete(entry);
      cb.onClose(err);
    };
    const entry: OpenCall = {
      address,
      move: () => {
        if (closed) return;
        ours = true;
        close(new TesseraError('TESSERA_ERR_IDENTITY_CONTROL_PLANE_SWITCHED', `moving from ${address} to ${this.#endpoints.current()}`));
        call.cancel();
      },
    };
    this.#open.add(entry);
    call.on('data', (m: T) => {
      if (!closed) cb.onMessage(m);
    });
    call.on('error', (e: grpc.ServiceError) => {
      if (!closed && !ours && replicaUnreachable(e)) this.#failed(address, describeGrpc(e));
      close(grpcCallError(e, 'TESSERA_ERR_IDENTITY_STREAM_FAILED'));
    });
    // A clean end not asked for: the replica is shutting down and tells its callers to go elsewhere.
    call.on('end', () => {
      if (!closed && !ours) this.#failed(address, 'stream ended by the control plane');
      close();
    });
    return {
      address,
      cancel: () => {
        ours = true;
        call.cancel();
      },
      halfClosed: () => {
        ours = true;
      },
    };
  }
}

/**
 * Whether a failed call says the replica could not be reached or could not serve (another one may), rather than
 * being the replica's answer: UNAVAILABLE and DEADLINE_EXCEEDED always; CANCELLED, INTERNAL and UNKNOWN only
 * without the control plane's stable error code (a transport failure, not a decision it made).
 */
export function replicaUnreachable(e: grpc.ServiceError): boolean {
  if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) return true;
  const answered = (e.metadata?.get(ERROR_CODE_METADATA).length ?? 0) > 0;
  return !answered && (e.code === grpc.status.CANCELLED || e.code === grpc.status.INTERNAL || e.code === grpc.status.UNKNOWN);
}

function describeGrpc(e: grpc.ServiceError): string {
  return `${grpc.status[e.code] ?? e.code}: ${e.details}`;
}

export interface MintedJwtSvid {
  readonly token: string;
  readonly spiffeId: string;
  readonly issuedAtMs: number;
  readonly expiresAtMs: number;
}

/** What a unary call's failure is, per call: an operator reads the code to know which part failed. */
type UnaryCallCode = 'TESSERA_ERR_IDENTITY_SIGN_FAILED' | 'TESSERA_ERR_JWT_SVID_UNAVAILABLE' | 'TESSERA_ERR_REPORT_FAILED';

/**
 * A gRPC failure as a TesseraError naming the status and the control plane's stable code, if it sent one (once:
 * its details often begin with it). `code`: the call's own (SignSvid's, MintJwtSvid's, Report's) or a stream's.
 */
export function grpcCallError(e: grpc.ServiceError, code: UnaryCallCode | 'TESSERA_ERR_IDENTITY_STREAM_FAILED'): TesseraError {
  const status = grpc.status[e.code] ?? String(e.code);
  const theirs = e.metadata?.get(ERROR_CODE_METADATA)[0];
  // grpc-js ends a failed connect's text with "Resolution note: " and whatever its resolver noted, often nothing.
  const text = e.details.replace(/\.? Resolution note: $/, '.');
  const details = theirs !== undefined && text.startsWith(`${String(theirs)}: `) ? text.slice(String(theirs).length + 2) : text;
  return new TesseraError(code, `${status}${theirs ? ` ${theirs}` : ''}: ${details}`, { grpcCode: e.code, ...(theirs ? { controlPlaneCode: String(theirs) } : {}) });
}
