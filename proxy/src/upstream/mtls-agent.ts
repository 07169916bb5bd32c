// A keep-alive http.Agent whose connections are Tessera mTLS connections (secure naming, cached client
// context, session resumption, handshake metrics): lets node:http clients (the edge) reach mesh upstreams.
import type { AgentOptions, ClientRequestArgs } from 'node:http';
import type { Duplex } from 'node:stream';
import { http } from '../../../shared-io/node-http.js';
import { type MtlsDeps, type MtlsTarget, mtlsConnect, type SessionMemory } from './connectors.js';

export class MtlsAgent extends http.Agent {
  readonly #target: MtlsTarget;
  readonly #deps: MtlsDeps;
  readonly #session: SessionMemory = {};

  constructor(target: MtlsTarget, deps: MtlsDeps, opts: AgentOptions) {
    super({ keepAlive: true, ...opts });
    this.#target = target;
    this.#deps = deps;
  }

  override createConnection(_options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    mtlsConnect(this.#target, this.#deps, this.#session, (err, socket) => callback?.(err, socket as Duplex));
    return undefined;
  }
}
