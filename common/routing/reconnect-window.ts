// How long a control plane must keep remembered self-registrations so that their proxies can reconnect first:
// derived from the proxies' reconnect schedule (the most a proxy waits between two attempts), shared by both sides
// so the control plane's window cannot drift below the proxies' backoff cap.

/** The most a proxy waits between two attempts to reach the control plane (the cap of its full-jitter backoff). */
export const CONTROL_PLANE_RECONNECT_MAX_MS = 15_000;

/** Time for the attempt itself once it starts: dial, TLS, the Register request and its answer, on a busy host. */
export const RECONNECT_MARGIN_MS = 5_000;

/**
 * How long registrations remembered across a restart (or left by a dead replica) are served after the control plane
 * is serving, and how old a stored session's heartbeat may get before it is swept: never shorter than the grace,
 * and never shorter than one full reconnect delay plus the margin, so every owner gets at least one attempt in.
 */
export function rememberedForMs(graceMs: number, maxReconnectMs = CONTROL_PLANE_RECONNECT_MAX_MS): number {
  return Math.max(graceMs, maxReconnectMs + RECONNECT_MARGIN_MS);
}
