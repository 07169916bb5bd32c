// A notification whose receiver is wired after its sender is built (the CA and the revocation list exist before
// the config hub and the gRPC server they notify): fired before connect(), it does nothing.

export class Relay {
  #receiver: (() => void) | undefined;

  connect(receiver: () => void): void {
    this.#receiver = receiver;
  }

  readonly fire = (): void => {
    this.#receiver?.();
  };
}
