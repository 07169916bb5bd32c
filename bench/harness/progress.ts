// Progress on the terminal: a redrawn bar when stderr is a TTY, otherwise nothing but the log lines.

export interface ProgressSink {
  readonly progress: (fraction: number, label: string) => void;
  readonly log: (line: string) => void;
  /** Clears the bar (call before printing anything else). */
  readonly done: () => void;
}

const WIDTH = 28;

/** "[##########..........]  42% round 2/5 nginx pair  0:41 left" */
export function renderBar(fraction: number, label: string, elapsedMs: number, columns = 100): string {
  const f = Math.min(1, Math.max(0, fraction));
  const filled = Math.round(f * WIDTH);
  const left = f > 0.02 ? (elapsedMs / f) * (1 - f) : Number.NaN;
  const eta = Number.isFinite(left) ? `  ${Math.floor(left / 60_000)}:${String(Math.round((left % 60_000) / 1000)).padStart(2, '0')} left` : '';
  const line = `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${String(Math.round(f * 100)).padStart(3)}% ${label}${eta}`;
  return line.length > columns - 1 ? line.slice(0, columns - 1) : line;
}

export function terminalProgress(write: (text: string) => void, isTty: boolean, columns: () => number, nowMs: () => number): ProgressSink {
  const started = nowMs();
  let last = { fraction: 0, label: '' };
  let drawnAt = 0;
  let shown = false;
  const draw = () => {
    write(`\r\x1b[2K${renderBar(last.fraction, last.label, nowMs() - started, columns())}`);
    shown = true;
  };
  return {
    progress(fraction, label) {
      const sameLabel = label === last.label;
      last = { fraction, label };
      if (!isTty) return;
      const now = nowMs();
      // Redraw at most 10 times a second, and always when the label changes.
      if (now - drawnAt < 100 && sameLabel && fraction < 1) return;
      drawnAt = now;
      draw();
    },
    log(line) {
      if (isTty && shown) write('\r\x1b[2K');
      write(`${line}\n`);
      if (isTty && shown) draw();
    },
    done() {
      if (isTty && shown) write('\r\x1b[2K');
      shown = false;
    },
  };
}
