// The log the control plane's parts write to: the pino-compatible subset they use, so any part can be handed the
// process logger (or a test's recorder) without depending on pino.

export interface ControlPlaneLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}
