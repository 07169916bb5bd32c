// For the child processes (--expose-gc) that check an HTTP/2 session's native handle is held until its socket has
// closed (shared-io/http2-handle-pins.ts): the source of `watchHandle(session, socket, seen)`, pasted into the child's
// script. It watches the handle through a WeakRef only: a full GC the turn after node:http2 let go of it (its
// socket's end() under way, the socket still open), then another 20 ms after the socket closed (the hold is let go a
// timer turn after the close); each session pushes "<while open>/<after close>" to `seen`: "held/released" when held.
export const WATCH_HANDLE_SOURCE = `
function watchHandle(session, socket, seen) {
  const key = Object.getOwnPropertySymbols(session).find((y) => y.description === 'kHandle');
  const ref = new WeakRef(session[key]);
  const end = socket.end;
  let whileOpen = 'not reached';
  socket.end = function (...args) {
    const r = end.apply(this, args);
    if (whileOpen === 'not reached') {
      whileOpen = 'socket closed first';
      setImmediate(() => {
        if (socket.closed) return;
        globalThis.gc();
        whileOpen = ref.deref() === undefined ? 'collected' : 'held';
      });
    }
    return r;
  };
  socket.once('close', () => setTimeout(() => {
    globalThis.gc();
    seen.push(whileOpen + '/' + (ref.deref() === undefined ? 'released' : 'kept'));
  }, 20));
}
`;
