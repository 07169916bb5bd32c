// What feeds the control plane's service registry besides self-registration: a source (the Kubernetes API, a
// static file) that reports its complete view each time it changes. The registry merges the sources; a source
// that fails keeps its last view in the registry until it reports again.
import type { ServiceEndpoint } from '../../../common/routing/service-endpoint.js';

/** Service name → its endpoints, as one source sees them now (complete: a service missing has none from it). */
export type SourceView = ReadonlyMap<string, readonly ServiceEndpoint[]>;

export interface EndpointSource {
  /** "kubernetes" | "static": the `source` every endpoint it reports carries. */
  readonly name: 'kubernetes' | 'static';
  /** Starts watching; `onView` gets the complete view at first sync and after every change. */
  start(onView: (view: SourceView) => void): void;
  stop(): void;
}
