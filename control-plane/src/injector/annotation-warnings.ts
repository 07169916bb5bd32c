// Warnings for tessera.dev/* annotations that will not do what their author meant (audit 61c I1): a typo such as
// `tessera.dev/outbounds` was admitted without a word, and so was `tessera.dev/inbound-port: "99999"`, which the
// control plane reads (not the injector) and then quietly leaves the pod out of discovery. Returned with the
// AdmissionReview (kubectl prints them) and by `tessera inject`; they never refuse a pod, as Istio's injector
// ignores unknown annotations and `istioctl analyze` warns.
import { escapeControlCharacters } from '../../../common/text/control-characters.js';
import { INBOUND_PORT_ANNOTATION, parsePort } from '../discovery/endpoint-slice-view.js';
import { ANNOTATION } from './annotations.js';

const PREFIX = 'tessera.dev/';
const KNOWN: ReadonlySet<string> = new Set([...Object.values(ANNOTATION), INBOUND_PORT_ANNOTATION]);
/** Kubernetes may cut a warning past 256 characters, and many warnings: a few short ones. */
const MAX_WARNINGS = 5;
const MAX_NAME_CHARS = 80;

/** Edit distance, bounded: the known names are short. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/** The known annotation nearest to `name`, when it is near enough to be what was meant. */
function nearest(name: string): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const k of KNOWN) {
    const d = distance(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * One warning per tessera.dev/ annotation of `pod` (an object as the review or manifest holds it) Tessera does not
 * read, and one for a tessera.dev/inbound-port that is not a port.
 */
export function annotationWarnings(pod: unknown): string[] {
  const meta = isObject(pod) ? pod.metadata : undefined;
  const annotations = isObject(meta) && isObject(meta.annotations) ? meta.annotations : {};
  const inboundPort = annotations[INBOUND_PORT_ANNOTATION];
  const badPort = inboundPort !== undefined && (typeof inboundPort !== 'string' || parsePort(inboundPort) === null);
  const portWarning = badPort ? [`tessera: annotation ${INBOUND_PORT_ANNOTATION} is not a port (1-65535): the control plane leaves this pod out of Kubernetes discovery`] : [];
  const unknown = Object.keys(annotations).filter((k) => k.toLowerCase().startsWith(PREFIX) && !KNOWN.has(k));
  const warnings = unknown.slice(0, MAX_WARNINGS).map((k) => {
    // Escaped, then cut: an escape is several characters, and Kubernetes may cut a warning past 256 (audit 61h I2).
    const escaped = escapeControlCharacters(k);
    const shown = escaped.length > MAX_NAME_CHARS ? `${escaped.slice(0, MAX_NAME_CHARS)}…` : escaped;
    const meant = k.length <= MAX_NAME_CHARS ? nearest(k) : undefined;
    return `tessera: annotation ${shown} is not one Tessera reads and has no effect${meant ? ` (did you mean ${meant}?)` : ''}`;
  });
  if (unknown.length > MAX_WARNINGS) warnings.push(`tessera: ${unknown.length - MAX_WARNINGS} more unknown tessera.dev/ annotations have no effect`);
  return [...portWarning, ...warnings];
}
