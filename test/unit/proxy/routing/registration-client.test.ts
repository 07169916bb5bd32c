// RegistrationClient on hand-driven calls and fake timers: the registrations planned from the config, the set
// sent on open and again only when readiness changes (looked at each second until ready, then every ten), draining sent at once and awaited (bounded), the set sent
// again after a reconnect, refusals reported by code only, and stop withdrawing everything.
import { describe, expect, test } from 'vitest';
import type { RegisterRequestMsg, RegisterResponseMsg } from '../../../../common/contract/discovery-v1.js';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';
import type { IssuedSvid } from '../../../../proxy/src/identity/control-plane-svid-source.js';
import type { StreamCallbacks } from '../../../../proxy/src/identity/reconnecting-stream.js';
import { plannedRegistrations, RegistrationClient, type RegistrationEvent } from '../../../../proxy/src/routing/registration-client.js';
import { FakeTime } from '../../../helpers/fake-time.js';

const ID = 'spiffe://example.org/ns/default/sa/api';
const svid = { id: SpiffeId.parse(ID) } as IssuedSvid;

function harness(opts: { answerTimeoutMs?: number } = {}) {
  const time = new FakeTime();
  const calls: { cb: StreamCallbacks<RegisterResponseMsg>; sent: RegisterRequestMsg[]; ended: boolean; cancelled: boolean }[] = [];
  const events: RegistrationEvent[] = [];
  let ready = false;
  const client = new RegistrationClient({
    open: (_svid, cb) => {
      const c = { cb, sent: [] as RegisterRequestMsg[], ended: false, cancelled: false };
      calls.push(c);
      return {
        send: (r) => {
          c.sent.push(r);
        },
        end: () => {
          c.ended = true;
        },
        cancel: () => {
          c.cancelled = true;
        },
      };
    },
    currentSvid: () => svid,
    registrations: [
      { service: 'api', address: '127.0.0.2:15006', protocol: 'http', zone: 'z1', weight: 100 },
      { service: 'api-grpc', address: '127.0.0.2:15007', protocol: 'grpc', zone: '', weight: 50 },
    ],
    ready: () => ready,
    pollMs: 1_000,
    ...opts,
    onEvent: (e) => events.push(e),
    timers: time,
    backoff: { initialMs: 100, maxMs: 1_000, jitter: 0 },
  });
  const answer = (i: number) => calls[i]!.cb.onMessage({ accepted: [], refused: [] });
  const readyFlags = (i: number) => calls[i]!.sent.map((r) => r.registrations.map((x) => x.endpoint!.ready).join(',') || 'none');
  return { time, calls, events, client, answer, readyFlags, setReady: (r: boolean) => {
      ready = r;
    },
  };
}

describe('plannedRegistrations', () => {
  test('advertise, else the listen host with the bound port; only listeners with service:', () => {
    const config = parseProxyConfig(
      `identity: { controlPlane: { address: 127.0.0.1:9000, bundleFile: /dev/null, trustDomain: example.org, joinToken: t } }
inbound:
  - { name: app, listen: 127.0.0.2:0, forwardTo: 127.0.0.1:8080, service: api.default, zone: z1 }
  - { name: pub, listen: 0.0.0.0:15007, forwardTo: 127.0.0.1:8081, protocol: grpc, service: rpc, advertise: "10.1.2.3:15007", weight: 7 }
  - { name: v6, listen: "[::1]:15008", forwardTo: 127.0.0.1:8082, protocol: tcp, service: raw }
`,
      'proxy.yaml',
    );
    const bound: Record<string, number> = { app: 41234 };
    const plain = { ...config.inbound[0]!, name: 'plain', registration: undefined };
    expect(plannedRegistrations([...config.inbound, plain], (n) => bound[n])).toEqual([
      { service: 'api.default', address: '127.0.0.2:41234', protocol: 'http', zone: 'z1', weight: 100 },
      { service: 'rpc', address: '10.1.2.3:15007', protocol: 'grpc', zone: '', weight: 7 },
      { service: 'raw', address: '[::1]:15008', protocol: 'tcp', zone: '', weight: 100 },
    ]);
  });
});

describe('RegistrationClient', () => {
  test('sends the complete set on open, and again only when readiness changes', () => {
    const h = harness();
    h.client.start();
    expect(h.calls).toHaveLength(1);
    expect(h.calls[0]!.sent[0]).toEqual({
      registrations: [
        { service: 'api', endpoint: { address: '127.0.0.2:15006', spiffe_id: ID, protocol: 'http', ready: false, zone: 'z1', weight: 100, source: 'self' } },
        { service: 'api-grpc', endpoint: { address: '127.0.0.2:15007', spiffe_id: ID, protocol: 'grpc', ready: false, zone: '', weight: 50, source: 'self' } },
      ],
    });
    h.time.advance(5_000);
    expect(h.readyFlags(0)).toEqual(['false,false']);
    h.setReady(true);
    h.time.advance(1_000);
    expect(h.readyFlags(0)).toEqual(['false,false', 'true,true']);
    h.time.advance(5_000);
    h.client.refresh();
    expect(h.calls[0]!.sent).toHaveLength(2);
    // refresh() sends a change at once, without waiting for the next look.
    h.setReady(false);
    h.client.refresh();
    expect(h.readyFlags(0)).toEqual(['false,false', 'true,true', 'false,false']);
  });

  test('readiness is looked at every second until ready, then every ten seconds; one look pending at a time', () => {
    const h = harness();
    h.client.start();
    h.time.advance(3_000);
    expect(h.readyFlags(0)).toEqual(['false,false']);
    expect(h.time.pending).toBe(1);
    h.setReady(true);
    h.time.advance(1_000);
    expect(h.readyFlags(0)).toEqual(['false,false', 'true,true']);
    // Ready: the next look is ten seconds away, so a change waits for it (or for refresh()).
    h.setReady(false);
    h.time.advance(9_999);
    expect(h.readyFlags(0)).toEqual(['false,false', 'true,true']);
    h.time.advance(1);
    expect(h.readyFlags(0)).toEqual(['false,false', 'true,true', 'false,false']);
    // Not ready again: back to a look a second.
    h.setReady(true);
    h.time.advance(1_000);
    expect(h.readyFlags(0)).toEqual(['false,false', 'true,true', 'false,false', 'true,true']);
    expect(h.time.pending).toBe(1);
  });

  test('after a reconnect the current set is sent again', () => {
    const h = harness();
    h.setReady(true);
    h.client.start();
    h.answer(0);
    h.calls[0]!.cb.onClose(new Error('UNAVAILABLE'));
    expect(h.client.connected).toBe(false);
    expect(h.events.at(-1)).toMatchObject({ kind: 'disconnected', retryInMs: 100 });
    h.time.advance(100);
    expect(h.calls).toHaveLength(2);
    expect(h.readyFlags(1)).toEqual(['true,true']);
  });

  test('setDraining sends ready=false at once and resolves when the control plane answered it', async () => {
    const h = harness();
    h.setReady(true);
    h.client.start();
    let done = false;
    const p = h.client.setDraining().then(() => {
      done = true;
    });
    expect(h.readyFlags(0)).toEqual(['true,true', 'false,false']);
    h.answer(0); // the answer to the first request: not yet the draining one
    await Promise.resolve();
    expect(done).toBe(false);
    h.answer(0);
    await p;
    expect(done).toBe(true);
    // Readiness back to true changes nothing while draining, on this call or the next.
    h.time.advance(3_000);
    expect(h.calls[0]!.sent).toHaveLength(2);
    h.calls[0]!.cb.onClose(new Error('UNAVAILABLE'));
    h.time.advance(100);
    expect(h.readyFlags(1)).toEqual(['false,false']);
  });

  test('setDraining waits at most answerTimeoutMs, and not at all without a call', async () => {
    const h = harness({ answerTimeoutMs: 500 });
    h.setReady(true);
    h.client.start();
    let done = false;
    const p = h.client.setDraining().then(() => {
      done = true;
    });
    h.time.advance(499);
    await Promise.resolve();
    expect(done).toBe(false);
    h.time.advance(1);
    await p;
    const idle = harness();
    await idle.client.setDraining();
    expect(idle.client.draining).toBe(true);
  });

  test('refusals are reported by code only; a text where a code belongs is not echoed', () => {
    const h = harness();
    h.client.start();
    h.calls[0]!.cb.onMessage({
      accepted: [],
      refused: [
        { service: 'api', address: '127.0.0.2:15006', code: 'TESSERA_ERR_DISCOVERY_NOT_YOUR_ID' },
        { service: 'api\nINJECTED', address: 'x'.repeat(5000), code: 'you are not who you say\nlevel=error' },
      ],
    });
    expect(h.events.at(-1)).toEqual({
      kind: 'answered',
      accepted: 0,
      refused: [
        { service: 'api', address: '127.0.0.2:15006', code: 'TESSERA_ERR_DISCOVERY_NOT_YOUR_ID' },
        { service: '?', address: '?', code: 'unknown' },
      ],
    });
  });

  test('stop withdraws every registration (an empty set), waits for the answer, then ends the call', async () => {
    const h = harness();
    h.setReady(true);
    h.client.start();
    const stopped = h.client.stop();
    expect(h.calls[0]!.sent.at(-1)).toEqual({ registrations: [] });
    expect(h.calls[0]!.ended).toBe(false);
    h.answer(0);
    h.answer(0);
    await stopped;
    expect(h.calls[0]!.ended).toBe(true);
    expect(h.time.pending).toBe(0);
    h.time.advance(10_000);
    expect(h.calls).toHaveLength(1);
  });

  test('no registrations: nothing is opened', () => {
    const time = new FakeTime();
    let opened = 0;
    const c = new RegistrationClient({ open: () => {
        opened++;
        return {} as never;
      }, currentSvid: () => svid, registrations: [], ready: () => true, timers: time });
    c.start();
    expect(opened).toBe(0);
    expect(time.pending).toBe(0);
  });
});
