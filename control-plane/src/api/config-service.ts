// tessera.config.v1.Config/Watch: authenticates the caller by its client SVID, sends its snapshot at once and
// again whenever its content changes; ends the stream when the caller's SVID expires (it reconnects renewed) or
// when the caller's ID or SVID serial is banned.
import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../common/clock.js';
import type { AuthorizationPolicy, BreakGlassGrant } from '../../../common/policy/policy-types.js';
import type { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import type { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import { TesseraError, isTesseraError } from '../../../common/errors.js';
import type { SvidAttestor } from '../attestation/svid-attestor.js';
import { type SnapshotInputs, buildSnapshot } from '../policy/config-snapshot.js';
import { toGrpcError } from './grpc-status.js';
import type { ConfigSnapshotMsg } from '../../../common/contract/config-v1.js';

export interface ConfigInputs {
  readonly bundles: () => readonly TrustBundle[];
  /** JWT-SVID keys by trust domain name (absent: none published). */
  readonly jwtAuthorities?: () => SnapshotInputs['jwtAuthorities'];
  readonly policies: () => readonly AuthorizationPolicy[];
  readonly grants: () => readonly BreakGlassGrant[];
  readonly denyList: () => SnapshotInputs['denyList'];
}

export interface ConfigHubOptions {
  readonly inputs: ConfigInputs;
  readonly svids: SvidAttestor;
  readonly peerChain: (call: { getPeer(): string }) => Buffer[];
  /** Operator bans: throws TESSERA_ERR_REVOCATION_* when the caller's ID or SVID serial is banned (required, as in Issuer). */
  readonly admit: (spiffeId: string, serial: string) => void;
  readonly clock: Clock;
  /** Persistent, monotonic version counter: returns the next version. */
  readonly nextVersion: () => number;
  readonly onWatchers?: (count: number) => void;
  readonly onVersion?: (version: number) => void;
  readonly onSent?: () => void;
  readonly onRefused?: (code: string, caller: string, detail: string | undefined) => void;
}

interface Watcher {
  readonly id: SpiffeId;
  readonly serial: string;
  readonly notAfterMs: number;
  readonly call: grpc.ServerWritableStream<unknown, ConfigSnapshotMsg>;
  lastKey: string;
}

export class ConfigHub {
  readonly #o: ConfigHubOptions;
  readonly #watchers = new Set<Watcher>();
  #version: number;

  constructor(opts: ConfigHubOptions) {
    this.#o = opts;
    // A new process starts at a new version, so a reconnecting proxy never sees one go backwards.
    this.#version = opts.nextVersion();
    opts.onVersion?.(this.#version);
  }

  get version(): number {
    return this.#version;
  }

  get watchers(): number {
    return this.#watchers.size;
  }

  /** Something every snapshot depends on changed: new version, then each caller gets what differs for it. */
  publish(): void {
    this.#version = this.#o.nextVersion();
    this.#o.onVersion?.(this.#version);
    // The inputs are the same for every caller: read once, not once per watcher.
    const inputs = this.#inputs();
    for (const w of this.#watchers) {
      const banned = this.#banned(w.id.toString(), w.serial);
      if (banned) this.#drop(w, banned);
      else this.#send(w, inputs);
    }
  }

  /** The short tick: end streams whose client SVID has expired. */
  tick(): void {
    const now = this.#o.clock.nowMs();
    for (const w of this.#watchers) {
      if (w.notAfterMs <= now) this.#drop(w, new TesseraError('TESSERA_ERR_ATTESTATION_SVID_INVALID', 'the client SVID expired'));
    }
  }

  /** Ends every stream with OK (shutdown). */
  endAll(): void {
    for (const w of [...this.#watchers]) {
      this.#watchers.delete(w);
      w.call.end();
    }
    this.#o.onWatchers?.(0);
  }

  handlers(): grpc.UntypedServiceImplementation {
    return {
      Watch: (call: grpc.ServerWritableStream<unknown, ConfigSnapshotMsg>) => {
        let peer: ReturnType<SvidAttestor['attest']>;
        try {
          peer = this.#o.svids.attest(this.#o.peerChain(call));
          this.#o.admit(peer.spiffeId.toString(), peer.serial);
        } catch (e) {
          const err = e as TesseraError;
          this.#o.onRefused?.(err.code, call.getPeer(), typeof err.details?.['reason'] === 'string' ? err.details['reason'] : undefined);
          // A ban is told as such (the operator's decision, not a fault of the SVID); other failures stay generic.
          const told = err.code?.startsWith('TESSERA_ERR_REVOCATION_') ? err : new TesseraError('TESSERA_ERR_ATTESTATION_SVID_INVALID');
          call.emit('error', toGrpcError(told));
          return;
        }
        const w: Watcher = { id: peer.spiffeId, serial: peer.serial, notAfterMs: peer.notAfterMs, call, lastKey: '' };
        this.#watchers.add(w);
        this.#o.onWatchers?.(this.#watchers.size);
        const forget = () => {
          if (this.#watchers.delete(w)) this.#o.onWatchers?.(this.#watchers.size);
        };
        call.on('cancelled', forget);
        call.on('close', forget);
        call.on('error', forget);
        this.#send(w);
      },
    };
  }

  #inputs(): SnapshotInputs {
    const i = this.#o.inputs;
    const jwt = i.jwtAuthorities?.();
    return { version: this.#version, bundles: i.bundles(), ...(jwt ? { jwtAuthorities: jwt } : {}), policies: i.policies(), grants: i.grants(), denyList: i.denyList() };
  }

  #send(w: Watcher, inputs: SnapshotInputs = this.#inputs()): void {
    const built = buildSnapshot(inputs, w.id, this.#o.clock.nowMs());
    if (built.contentKey === w.lastKey) return;
    w.lastKey = built.contentKey;
    w.call.write(built.message);
    this.#o.onSent?.();
  }

  /** The ban's error when this watcher may no longer watch, else undefined. */
  #banned(id: string, serial: string): TesseraError | undefined {
    try {
      this.#o.admit(id, serial);
      return undefined;
    } catch (e) {
      return isTesseraError(e) ? e : new TesseraError('TESSERA_ERR_ISSUANCE_INTERNAL');
    }
  }

  #drop(w: Watcher, e: TesseraError): void {
    this.#watchers.delete(w);
    this.#o.onWatchers?.(this.#watchers.size);
    w.call.emit('error', toGrpcError(e));
  }
}
