// The shape of the pod as far as injection reads or extends it, checked element by element: a malformed review is
// a coded refusal naming the field (TESSERA_ERR_INJECT_NOT_A_POD, 400), never an exception deeper in (audit 4, C1:
// a null list element or a mount without mountPath was a 500). Everything else is the API server's to validate.
import { TesseraError } from '../../../common/errors.js';
import { MAX_CONTAINERS, tooLarge } from './admission-limits.js';
import { isObject, type Pod } from './k8s-types.js';
import { PROBE_KINDS, PROBE_TIMING_FIELDS } from './probe-rewrite.js';
import { SIDECAR_NAME } from './sidecar.js';

export function notAPod(message: string): TesseraError {
  return new TesseraError('TESSERA_ERR_INJECT_NOT_A_POD', `not a pod: ${message}`);
}

/** RFC 1123 label: what Kubernetes requires of a container name. Probe keys and log lines rely on it. */
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/**
 * What Kubernetes takes as a probe's header name (IsHTTPHeaderName): letters, digits and "-". The wider RFC 9110
 * token let "__proto__" through, which the sidecar's config parser refuses as a map key (audit 59c F1).
 */
const HEADER_NAME = /^[-A-Za-z0-9]+$/;
/** What node:http refuses in a header value (the sidecar sends the probe's headers with it). */
const BAD_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const PROBE_HANDLERS = ['httpGet', 'tcpSocket', 'exec', 'grpc'] as const;

const absent = (v: unknown) => v === undefined || v === null;
const isInt32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= -2_147_483_648 && v <= 2_147_483_647;

function list(value: unknown, where: string): readonly unknown[] {
  if (absent(value)) return [];
  if (!Array.isArray(value)) throw notAPod(`${where} is not a list`);
  return value;
}

function objects(value: unknown, where: string, check: (o: Record<string, unknown>, at: string) => void = () => {}): void {
  list(value, where).forEach((o, i) => {
    const at = `${where}[${i}]`;
    if (!isObject(o)) throw notAPod(`${at} is not an object`);
    check(o, at);
  });
}

function stringField(o: Record<string, unknown>, key: string, at: string, required: boolean): void {
  if (required ? typeof o[key] !== 'string' || o[key] === '' : !absent(o[key]) && typeof o[key] !== 'string') {
    throw notAPod(`${at}.${key} is ${required ? 'missing or ' : ''}not a string`);
  }
}

function stringMap(value: unknown, where: string): void {
  if (absent(value)) return;
  if (!isObject(value) || Object.values(value).some((v) => typeof v !== 'string')) throw notAPod(`${where} is not a map of strings`);
}

function intOrString(o: Record<string, unknown>, key: string, at: string): void {
  if (!isInt32(o[key]) && typeof o[key] !== 'string') throw notAPod(`${at}.${key} is missing or not a number or name`);
}

function checkProbe(probe: unknown, at: string): void {
  if (absent(probe)) return;
  if (!isObject(probe)) throw notAPod(`${at} is not an object`);
  const handlers = PROBE_HANDLERS.filter((h) => !absent(probe[h]));
  for (const h of handlers) if (!isObject(probe[h])) throw notAPod(`${at}.${h} is not an object`);
  if (handlers.length > 1) throw notAPod(`${at} has more than one handler (${handlers.join(', ')})`);
  for (const f of PROBE_TIMING_FIELDS) if (!absent(probe[f]) && !isInt32(probe[f])) throw notAPod(`${at}.${f} is not an integer`);
  if (isObject(probe.httpGet)) {
    const h = probe.httpGet;
    intOrString(h, 'port', `${at}.httpGet`);
    for (const k of ['path', 'host', 'scheme']) stringField(h, k, `${at}.httpGet`, false);
    objects(h.httpHeaders, `${at}.httpGet.httpHeaders`, (x, hat) => {
      if (typeof x.name !== 'string' || !HEADER_NAME.test(x.name)) throw notAPod(`${hat}.name is not an HTTP header name`);
      if (typeof x.value !== 'string' || BAD_HEADER_VALUE.test(x.value)) throw notAPod(`${hat}.value is not a string an HTTP header can carry`);
    });
  }
  if (isObject(probe.tcpSocket)) {
    intOrString(probe.tcpSocket, 'port', `${at}.tcpSocket`);
    stringField(probe.tcpSocket, 'host', `${at}.tcpSocket`, false);
  }
}

function checkContainer(c: Record<string, unknown>, at: string): void {
  if (typeof c.name !== 'string') throw notAPod(`${at} has no name`);
  if (!DNS_LABEL.test(c.name)) throw notAPod(`${at}.name "${c.name.slice(0, 80)}" is not a DNS label (a-z, 0-9, "-", at most 63), as Kubernetes requires`);
  objects(c.ports, `${at}.ports`, (p, pat) => {
    if (!isInt32(p.containerPort) || p.containerPort < 1 || p.containerPort > 65535) throw notAPod(`${pat}.containerPort is not a port number 1-65535`);
    stringField(p, 'name', pat, false);
  });
  objects(c.env, `${at}.env`, (e, eat) => stringField(e, 'name', eat, true));
  objects(c.volumeMounts, `${at}.volumeMounts`, (m, mat) => {
    stringField(m, 'name', mat, true);
    stringField(m, 'mountPath', mat, true);
  });
  stringField(c, 'restartPolicy', at, false);
  for (const field of Object.keys(PROBE_KINDS)) checkProbe(c[field], `${at}.${field}`);
}

/** Checks the parts of the pod that injection reads or extends, and the container bound; returns it typed. */
export function asPod(value: unknown): Pod {
  if (!isObject(value)) throw notAPod('expected an object');
  if (value.metadata !== undefined && !isObject(value.metadata)) throw notAPod('metadata is not an object');
  const meta = (value.metadata ?? {}) as Record<string, unknown>;
  stringMap(meta.annotations, 'metadata.annotations');
  stringMap(meta.labels, 'metadata.labels');
  const spec = value.spec;
  if (!isObject(spec)) throw notAPod('spec is missing');
  if (!Array.isArray(spec.containers) || spec.containers.length === 0) throw notAPod('spec.containers is missing or empty');
  const inits = list(spec.initContainers, 'spec.initContainers');
  const total = spec.containers.length + inits.length;
  // Checked before any element is looked at (but the one the injector adds): the bound is what keeps the work per
  // review small. It is on the pod's own containers: the injector's sidecar, in a pod injected already (a
  // reinvocation, a manifest from `tessera inject`), is not counted, or a pod it injected would be denied when
  // reviewed again (audit 17b, F3). Only a pod one over is searched for it, so the search is bounded too.
  const ours = total === MAX_CONTAINERS + 1 && inits.some((c) => isObject(c) && c.name === SIDECAR_NAME) ? 1 : 0;
  if (total - ours > MAX_CONTAINERS) throw tooLarge(`the pod has ${total} containers and init containers; the injector handles at most ${MAX_CONTAINERS} besides its own ${SIDECAR_NAME}`);
  const names = new Set<string>();
  for (const key of ['containers', 'initContainers'] as const) {
    objects(spec[key], `spec.${key}`, (c, at) => {
      checkContainer(c, at);
      if (names.has(c.name as string)) throw notAPod(`${at}.name "${c.name}" is used by another container of the pod`);
      names.add(c.name as string);
    });
  }
  objects(spec.volumes, 'spec.volumes', (v, at) => stringField(v, 'name', at, true));
  return value as unknown as Pod;
}
