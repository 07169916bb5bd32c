// A preload for child processes of tests (`node --import <this file's URL>`, Node strips its types): the process's
// wall clock reads $TESSERA_TEST_CLOCK_SKEW_MS off the real one (negative: behind), as on a host whose clock is
// wrong. Date.now(), `new Date()` and performance.timeOrigin move; the monotonic clock (performance.now(), timers)
// does not, nor OpenSSL's own certificate-time checks (on a real host they would move too). Test fixture only.

const skewMs = Number(process.env['TESSERA_TEST_CLOCK_SKEW_MS'] ?? 0);

if (Number.isFinite(skewMs) && skewMs !== 0) {
  const RealDate = Date;
  class SkewedDate extends RealDate {
    constructor(...args: unknown[]) {
      // Only "now" moves: a Date made from a given time is that time.
      if (args.length === 0) super(RealDate.now() + skewMs);
      else super(...(args as [string]));
    }
    static now(): number {
      return RealDate.now() + skewMs;
    }
  }
  globalThis.Date = SkewedDate as unknown as DateConstructor;
  Object.defineProperty(performance, 'timeOrigin', { value: performance.timeOrigin + skewMs });
}
