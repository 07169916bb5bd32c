// `tessera demo-app`: a small real HTTP app for the local mesh; it answers every request with what it saw,
// so the forwarded caller identity (x-forwarded-client-cert) and trace context are visible, and which replica
// (instance) answered, so balancing is visible too.
import { type Command, runOnDemand } from '../command.js';

/** --delay: 0 (none) to 1h; a slower replica is a stopped one. */
export const DELAY_RANGE = { min: 0, max: 3_600_000 } as const;

export const demoAppCommand: Command = {
  path: ['demo-app'],
  ownsStop: true,
  summary: 'Run a small HTTP echo app (used by `tessera up`)',
  usage: '--name NAME --listen HOST:PORT [--instance ID] [--delay D]',
  details: 'Answers every request with JSON: app name, instance, method, path, and the request headers it received.',
  flags: {
    name: { type: 'string', value: 'NAME', description: 'Name reported in every answer', required: true },
    listen: { type: 'string', value: 'HOST:PORT', description: 'Address to listen on (loopback)', required: true },
    instance: { type: 'string', value: 'ID', description: 'Replica reported in every answer (`instance`, and the x-demo-instance header); default: the name' },
    delay: { type: 'string', value: 'D', description: 'Answer every request this much later (e.g. 50ms; at most 1h): a slow replica' },
  },
  run: runOnDemand(() => import('../run/demo-app.js'), (m) => m.runDemoApp),
};
