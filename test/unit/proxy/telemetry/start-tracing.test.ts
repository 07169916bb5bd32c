// The "tracing on" line and the ignored-variable warnings name the OTLP endpoint without its user:password or
// query values, from the config and from OTEL_EXPORTER_OTLP_ENDPOINT alike.
import { Writable } from 'node:stream';
import pino from 'pino';
import { Registry } from 'prom-client';
import { expect, test } from 'vitest';
import { SpiffeId } from '../../../../common/spiffe/spiffe-id.js';
import { startTracing } from '../../../../proxy/src/telemetry/start-tracing.js';

function capture(): { log: pino.Logger; text: () => string } {
  let out = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      out += String(chunk);
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), text: () => out };
}

const ID = SpiffeId.parse('spiffe://example.org/ns/default/sa/api');

test('the endpoint is logged without its credentials, from the config or the environment', async () => {
  for (const [config, env] of [
    [{ otlpEndpoint: 'https://user:s3cret@otel.example:4318/v1/traces?token=t0ken' }, {}],
    [{}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://user:s3cret@otel.example:4318?token=t0ken' }],
    [{}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://user:s3cret@otel.example/' }],
  ] as const) {
    const c = capture();
    const tracer = await startTracing(config, env, ID, c.log, new Registry());
    await tracer?.shutdown();
    expect(c.text()).toMatch(/tracing on|tracing environment variable ignored/);
    expect(c.text()).not.toContain('s3cret');
    expect(c.text()).not.toContain('t0ken');
  }
});
