// The gRPC metadata key under which the control plane sends the stable TESSERA_ERR_* code of a refusal
// (docs/errors.md); the proxy, the CLI and the tests read it back from the same constant.
export const ERROR_CODE_METADATA = 'tessera-error-code';
