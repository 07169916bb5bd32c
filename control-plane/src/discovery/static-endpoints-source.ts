// The static endpoint source: a YAML file `services: { NAME: [ { address, spiffeId, protocol, ... } ] }` for
// endpoints outside the mesh's reach, watched with the one file watcher. A bad file keeps the last good view and
// is reported as file:line: key with TESSERA_ERR_DISCOVERY_SOURCE_FAILED.
import { resolve } from 'node:path';
import type { ObjectSchema } from '../../../common/config/schema.js';
import { isMap, isScalar } from 'yaml';
import { lineOf, MAX_CONFIG_BYTES, type ParsedYaml, parseYamlConfig } from '../../../common/config/validate-yaml.js';
import { TesseraError, isTesseraError } from '../../../common/errors.js';
import { endpointAddress, endpointFromWire, isServiceName, type ServiceEndpoint } from '../../../common/routing/service-endpoint.js';
import { SpiffeId } from '../../../common/spiffe/spiffe-id.js';
import { type PathWatch, watchPaths } from '../../../shared-io/file-watch.js';
import { configText, errnoReason } from '../../../shared-io/read-named-file.js';
import type { Timers } from '../../../shared-io/timers.js';
import type { EndpointSource, SourceView } from './endpoint-source.js';
import { readSmallFileBytes } from '../../../shared-io/bounded-read.js';

/** Bounds of one file: a typo cannot make the registry (and every proxy) hold an unbounded list. */
const MAX_SERVICES = 1000;
const MAX_ENDPOINTS_PER_SERVICE = 1000;

export const STATIC_ENDPOINTS_SCHEMA: ObjectSchema = {
  type: 'object',
  properties: {
    services: {
      type: 'map',
      required: true,
      description: 'Service name ([a-z0-9.-]+) → its endpoints',
      values: {
        type: 'array',
        maxItems: MAX_ENDPOINTS_PER_SERVICE,
        items: {
          type: 'object',
          properties: {
            address: { type: 'string', format: 'address', required: true, description: 'host:port of the endpoint ([v6]:port)' },
            spiffeId: { type: 'string', format: 'spiffe-id', required: true, description: 'The SPIFFE ID it must present' },
            protocol: { type: 'string', enum: ['http', 'http2', 'grpc', 'tcp'], default: 'http' },
            ready: { type: 'boolean', default: true },
            zone: { type: 'string' },
            weight: { type: 'number', integer: true, min: 1, max: 1000, default: 100 },
          },
        },
      },
    },
  },
};

interface RawEntry {
  address: string;
  spiffeId: string;
  protocol: string;
  ready: boolean;
  zone?: string;
  weight: number;
}

/** The most the static endpoints file may hold: the YAML loader's bound for any config (1 MiB), one documented limit. */
export const MAX_STATIC_FILE_BYTES = MAX_CONFIG_BYTES;

/** Reads and checks the file once: its whole view, or a TesseraError naming file:line: key. */
export function readStaticEndpoints(file: string): SourceView {
  let bytes: Buffer;
  try {
    // Re-read whenever it changes, on the event loop: a FIFO or a device in its place is refused, not read.
    bytes = readSmallFileBytes(file, MAX_STATIC_FILE_BYTES);
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_DISCOVERY_SOURCE_FAILED', `${file}: cannot read the static endpoints file: ${errnoReason(e)}`, { file, line: 0 });
  }
  // UTF-8 as every config: another encoding is refused at its first bad byte, not read with U+FFFD.
  const text = configText(bytes, file, 'TESSERA_ERR_DISCOVERY_SOURCE_FAILED');
  let parsed: ReturnType<typeof parseYamlConfig<{ services: Record<string, RawEntry[]> }>>;
  try {
    parsed = parseYamlConfig<{ services: Record<string, RawEntry[]> }>(text, file, STATIC_ENDPOINTS_SCHEMA);
  } catch (e) {
    if (!isTesseraError(e)) throw e;
    throw new TesseraError('TESSERA_ERR_DISCOVERY_SOURCE_FAILED', e.message, { ...e.details, cause: e.code });
  }
  const fail = (path: (string | number)[], what: string): never => {
    const line = lineOf(parsed, path);
    const key = path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('').slice(1);
    throw new TesseraError('TESSERA_ERR_DISCOVERY_SOURCE_FAILED', `${file}:${line}: ${key}: ${what}`, { file, line, key });
  };
  const names = Object.keys(parsed.value.services);
  if (names.length > MAX_SERVICES) fail(['services'], `at most ${MAX_SERVICES} services`);
  const view = new Map<string, readonly ServiceEndpoint[]>();
  for (const service of names) {
    if (!isServiceName(service)) {
      const line = keyLine(parsed, service);
      throw new TesseraError('TESSERA_ERR_DISCOVERY_SOURCE_FAILED', `${file}:${line}: services.${service}: not a service name ([a-z0-9.-]+, starting and ending with a letter or digit)`, { file, line, key: `services.${service}` });
    }
    const seen = new Set<string>();
    const eps = parsed.value.services[service]!.map((raw, i) => {
      let e: ServiceEndpoint;
      try {
        e = endpointFromWire({ address: raw.address, spiffe_id: raw.spiffeId, protocol: raw.protocol, ready: raw.ready, zone: raw.zone ?? '', weight: raw.weight, source: 'static' }, (id) => SpiffeId.tryParse(id).ok);
      } catch (err) {
        return fail(['services', service, i], (err as Error).message);
      }
      if (seen.has(endpointAddress(e))) fail(['services', service, i, 'address'], `${raw.address} is listed twice`);
      seen.add(endpointAddress(e));
      return e;
    });
    if (eps.length > 0) view.set(service, Object.freeze(eps));
  }
  return view;
}

/** Line of a service name's key under `services` (the value's line would point one line too far for a list). */
function keyLine(parsed: ParsedYaml<unknown>, service: string): number {
  const map = parsed.document.get('services', true);
  const pair = isMap(map) ? map.items.find((p) => isScalar(p.key) && String(p.key.value) === service) : undefined;
  const node = (pair?.key ?? map) as { range?: [number, number, number] } | undefined;
  return parsed.lineCounter.linePos(node?.range?.[0] ?? 0).line;
}

export interface StaticEndpointsSourceOptions {
  readonly file: string;
  /** The file could not be used; the last good view stays. */
  readonly onError: (e: TesseraError) => void;
  readonly pollMs?: number;
  readonly debounceMs?: number;
  readonly timers?: Timers;
}

export class StaticEndpointsSource implements EndpointSource {
  readonly name = 'static' as const;
  readonly #o: StaticEndpointsSourceOptions;
  readonly #file: string;
  #watch: PathWatch | undefined;

  constructor(opts: StaticEndpointsSourceOptions) {
    this.#o = opts;
    this.#file = resolve(opts.file);
  }

  start(onView: (view: SourceView) => void): void {
    if (this.#watch) return;
    const load = () => {
      try {
        onView(readStaticEndpoints(this.#file));
      } catch (e) {
        this.#o.onError(isTesseraError(e) ? e : new TesseraError('TESSERA_ERR_DISCOVERY_SOURCE_FAILED', `${this.#file}: ${(e as Error).message}`));
      }
    };
    // Watch first: the watcher's baseline is taken now, so a change made while reading below is not lost.
    this.#watch = watchPaths({
      paths: [this.#file],
      onChange: load,
      ...(this.#o.timers ? { timers: this.#o.timers } : {}),
      ...(this.#o.pollMs !== undefined ? { pollMs: this.#o.pollMs } : {}),
      ...(this.#o.debounceMs !== undefined ? { debounceMs: this.#o.debounceMs } : {}),
    });
    load();
  }

  stop(): void {
    this.#watch?.close();
    this.#watch = undefined;
  }
}
