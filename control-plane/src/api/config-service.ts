// tessera.config.v1.Config/Watch: authenticates the caller by its client SVID, sends its snapshot at once and
// again whenever its content changes; ends the stream when the caller's SVID expires (it reconnects renewed) or
// when the caller's ID or SVID serial is banned.
import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../common/clock.js';
import type { AuthorizationPolicy, BreakGlassGrant } from '../../../common/policy/policy-types.js';
import type { TrustBundle } from '../../../common/spiffe/trust-bundle.js';
import { TesseraError, isTesseraError } from '../../../common/errors.js';
import type { SvidAttestor } from '../attestation/svid-attestor.js';
import { type SnapshotInputs, buildSnapshot } from '../policy/config-snapshot.js';
import { authenticateStream, type OpenStream, OpenStreams } from './stream-caller.js';
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

interface Watcher extends OpenStream {
  readonly call: grpc.ServerWritableStream<unknown, ConfigSnapshotMsg>;
  lastKey: string;
}

export class ConfigHub {
  readonly #o: ConfigHubOptions;
  readonly #watchers: OpenStreams<Watcher>;
  #version: number;

  constructor(opts: ConfigHubOptions) {
    this.#o = opts;
    this.#watchers = new OpenStreams<Watcher>({ ...(opts.onWatchers ? { onCount: opts.onWatchers } : {}) });
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
    for (const w of [...this.#watchers]) {
      const banned = this.#banned(w.peer.spiffeId.toString(), w.peer.serial);
      if (banned) this.#watchers.drop(w, banned);
      else this.#send(w, inputs);
    }
  }

  /** The short tick: end streams whose client SVID has expired. */
  tick(): void {
    this.#watchers.sweep(this.#o.clock.nowMs());
  }

  /** Ends every stream with OK (shutdown). */
  endAll(): void {
    this.#watchers.endAll();
  }

  handlers(): grpc.UntypedServiceImplementation {
    return {
      Watch: (call: grpc.ServerWritableStream<unknown, ConfigSnapshotMsg>) => {
        const peer = authenticateStream(call, this.#o);
        if (!peer) return;
        const w: Watcher = { peer, call, lastKey: '' };
        this.#watchers.add(w);
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
    const built = buildSnapshot(inputs, w.peer.spiffeId, this.#o.clock.nowMs());
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
}
