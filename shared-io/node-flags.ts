// The V8 flags every Tessera process runs with wherever Tessera starts it: the image's ENTRYPOINT, the `tessera`
// bin's shebang, `tessera up`, `workers: N` (through execArgv) and the bench. A unit test keeps the Dockerfile and
// the shebang equal to this list. Measured, not guessed: docs/operations.md, "Memory under connection churn".

/**
 * `--max-semi-space-size=8`: Node 24 lets the young generation grow to 2 × 64 MB on a large machine under
 * allocation churn (a client opening a connection per request: sidecar RSS 75 → 200+ MB); 8 MB semi-spaces hold
 * it at 16 MB (RSS ~110 MB there) at no measurable CPU cost per request, where 1–2 MB cost 15–30 % more CPU.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];

/**
 * The flags of NODE_FLAGS that `execArgv` (the running process's node options) lacks: a proxy started by hand
 * (`node dist/cli/tessera.js proxy …`) warns about them instead of growing quietly under connection churn.
 */
export function missingNodeFlags(execArgv: readonly string[]): string[] {
  return NODE_FLAGS.filter((f) => !execArgv.some((a) => a === f || a.replace(/_/g, '-') === f));
}
