// A listen or forward address as the config gives it (host without brackets, port 0 = any free one); its own
// file so that the proxy and edge config modules can both use it without importing each other.
export interface Address {
  readonly host: string;
  readonly port: number;
}
