// `tessera inject`: the sidecar injection of the Kubernetes webhook, offline, over a YAML manifest stream.
import { type Command, runOnDemand } from '../command.js';

export const DEFAULT_CONTROL_PLANE = 'tessera-control-plane.tessera-system.svc:8443';

export const injectCommand: Command = {
  path: ['inject'],
  summary: 'Add the Tessera sidecar to the Pods and pod templates of a Kubernetes manifest (offline webhook)',
  usage: '-f|--file FILE|- --bundle F [--image IMG] [--pull-policy P] [--control-plane HOST:PORT]',
  details:
    'Does what the injection webhook does, without a cluster: every Pod, and the pod template of every Deployment, ' +
    'StatefulSet, DaemonSet, ReplicaSet, Job and CronJob (also inside a List or any *List), gets the native-sidecar proxy (unless annotated ' +
    'tessera.dev/inject: "false", already injected, or a pod the webhook skips: hostNetwork, Windows, a mirror pod); other objects pass through. The result goes to stdout as ' +
    'YAML (pipe it to kubectl apply -f -), one line per object to stderr. Namespace labels are not consulted. ' +
    'Exit 1 on a malformed tessera.dev annotation (the message names it), as the webhook would deny the pod, and on YAML ' +
    'kubectl would not read (not UTF-8, a recursive alias, aliases past the bound), each with its error code.',
  positionals: [0, 2],
  flags: {
    file: { type: 'string', value: 'FILE', description: 'Manifest to inject (YAML, several documents allowed); - reads stdin' },
    bundle: { type: 'string', value: 'FILE', description: "Trust bundle PEM (the control plane's <data dir>/bundle.pem)", required: true },
    image: { type: 'string', value: 'IMG', description: 'Sidecar image (default tessera:<version>)' },
    'control-plane': { type: 'string', value: 'HOST:PORT', description: `Control-plane gRPC address (default ${DEFAULT_CONTROL_PLANE})` },
    'pull-policy': { type: 'string', value: 'P', description: 'imagePullPolicy of the sidecar: Always, IfNotPresent (default) or Never' },
  },
  run: runOnDemand(() => import('../run/inject.js'), (m) => m.runInject),
};
