// A real grpc-js server of tessera.discovery.v1.Discovery over mTLS (like the control plane's), for the proxy's
// discovery client tests: holds a service → endpoints map, answers Watch with a full snapshot then per-service
// updates, records Register requests with the caller's proven SPIFFE ID, and can send raw (malformed) updates.
import * as grpc from '@grpc/grpc-js';
import type { DiscoveryUpdateMsg, DiscoveryWatchRequestMsg, EndpointMsg, RegisterRequestMsg, RegisterResponseMsg } from '../../common/contract/discovery-v1.js';
import { loadTesseraServices } from '../../shared-io/proto-loader.js';
import type { TestCa } from './test-ca.js';

interface Watcher {
  readonly req: DiscoveryWatchRequestMsg;
  readonly call: grpc.ServerWritableStream<DiscoveryWatchRequestMsg, DiscoveryUpdateMsg>;
}

export interface RegisterCall {
  /** The caller's SPIFFE ID from its client certificate. */
  readonly peerId: string;
  /** The client certificate's serial (uppercase hex, as node:tls reports it). */
  readonly peerSerial: string;
  readonly requests: RegisterRequestMsg[];
  ended: boolean;
}

export class DiscoveryTestServer {
  readonly port: number;
  readonly #server: grpc.Server;
  readonly #services: Map<string, EndpointMsg[]>;
  #version: bigint;
  readonly watchers = new Set<Watcher>();
  /** Every Watch call's request and the client certificate serial it came with. */
  readonly watchCalls: { req: DiscoveryWatchRequestMsg; peerSerial: string }[] = [];
  readonly registerCalls: RegisterCall[] = [];
  /** When set, Register requests are recorded but not answered (a slow control plane). */
  silentRegister = false;

  private constructor(server: grpc.Server, port: number, services: Map<string, EndpointMsg[]>, version: bigint) {
    this.#server = server;
    this.port = port;
    this.#services = services;
    this.#version = version;
  }

  /** Serves on 127.0.0.1:`port` (0: any) with spiffe://<td>/tessera/control-plane, requiring a client SVID of `ca`. */
  static async start(ca: TestCa, opts: { port?: number; version?: bigint; services?: Map<string, EndpointMsg[]> } = {}): Promise<DiscoveryTestServer> {
    const svid = await ca.mintSvid(`spiffe://${ca.trustDomain}/tessera/control-plane`);
    const server = new grpc.Server();
    const creds = grpc.ServerCredentials.createSsl(Buffer.from(ca.bundlePem()), [{ private_key: Buffer.from(svid.keyPem), cert_chain: Buffer.from(svid.chainPem) }], true);
    let self: DiscoveryTestServer | undefined;
    server.addService(loadTesseraServices().discovery.service, {
      Watch: (call: Watcher['call']) => self!.#onWatch(call),
      Register: (call: grpc.ServerDuplexStream<RegisterRequestMsg, RegisterResponseMsg>) => self!.#onRegister(call),
    });
    const port = await new Promise<number>((ok, fail) => server.bindAsync(`127.0.0.1:${opts.port ?? 0}`, creds, (e, p) => (e ? fail(e) : ok(p))));
    self = new DiscoveryTestServer(server, port, opts.services ?? new Map(), opts.version ?? 1n);
    return self;
  }

  get version(): bigint {
    return this.#version;
  }

  /** The current state (to start a "restarted" server with). */
  get services(): Map<string, EndpointMsg[]> {
    return new Map(this.#services);
  }

  /** Replaces one service's endpoints and sends an incremental update to every watcher of it. */
  setService(name: string, endpoints: EndpointMsg[]): void {
    if (endpoints.length === 0) this.#services.delete(name);
    else this.#services.set(name, endpoints);
    this.#version++;
    for (const w of this.watchers) {
      if (w.req.all || w.req.services.includes(name)) w.call.write(this.#update(false, [name]));
    }
  }

  /** Sends this message as is to every watcher (malformed updates, versions that go back). */
  sendRaw(msg: Partial<DiscoveryUpdateMsg> & { services: unknown[] }): void {
    for (const w of this.watchers) w.call.write({ version: '0', full: false, generated_at_unix_ms: '0', ...msg });
  }

  /** Ends every open call with UNAVAILABLE (the control plane going away without stopping). */
  dropCalls(): void {
    for (const w of this.watchers) w.call.destroy({ code: grpc.status.UNAVAILABLE, details: 'dropped by test' } as grpc.ServiceError);
    this.watchers.clear();
  }

  async stop(): Promise<void> {
    this.#server.forceShutdown();
  }

  #update(full: boolean, names: Iterable<string>): DiscoveryUpdateMsg {
    return {
      version: this.#version.toString(),
      full,
      services: [...names].map((service) => ({ service, endpoints: this.#services.get(service) ?? [] })),
      generated_at_unix_ms: String(Date.now()),
    };
  }

  #onWatch(call: Watcher['call']): void {
    const w: Watcher = { req: call.request, call };
    this.watchCalls.push({ req: call.request, peerSerial: peerOf(call).serial });
    this.watchers.add(w);
    const names = call.request.all ? [...this.#services.keys()] : call.request.services.filter((s) => this.#services.has(s));
    call.write(this.#update(true, names));
    const done = () => this.watchers.delete(w);
    call.on('cancelled', done);
    call.on('error', done);
    call.on('close', done);
  }

  #onRegister(call: grpc.ServerDuplexStream<RegisterRequestMsg, RegisterResponseMsg>): void {
    const peer = peerOf(call);
    const rc: RegisterCall = { peerId: peer.id, peerSerial: peer.serial, requests: [], ended: false };
    this.registerCalls.push(rc);
    call.on('data', (req: RegisterRequestMsg) => {
      rc.requests.push(req);
      if (this.silentRegister) return;
      const accepted = req.registrations.filter((r) => r.endpoint?.spiffe_id === peer.id);
      const refused = req.registrations.filter((r) => r.endpoint?.spiffe_id !== peer.id).map((r) => ({ service: r.service, address: r.endpoint?.address ?? '', code: 'TESSERA_ERR_DISCOVERY_NOT_YOUR_ID' }));
      call.write({ accepted, refused });
    });
    call.on('end', () => {
      rc.ended = true;
      call.end();
    });
    call.on('error', () => {
      rc.ended = true;
    });
  }
}

function peerOf(call: Pick<grpc.ServerWritableStream<unknown, unknown>, 'getAuthContext'>): { id: string; serial: string } {
  const cert = call.getAuthContext().sslPeerCertificate;
  const id = /URI:(spiffe:\/\/[^,\s]+)/.exec(String(cert?.subjectaltname ?? ''))?.[1] ?? '';
  return { id, serial: String(cert?.serialNumber ?? '') };
}
