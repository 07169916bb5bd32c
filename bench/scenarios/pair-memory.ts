// Memory of the proxies in pair scenarios: RSS and PSS per side, idle (right after start) → under load (at the end
// of each measured window), as summary cells and as a headline with the growth over idle.
import type { Measurement } from '../harness/scenario.js';
import { type Spread, formatNumber, spread, valuesOf } from '../harness/stats.js';

export const RSS_COLUMN = 'RSS MB idle→load client / server';
export const PSS_COLUMN = 'PSS MB idle→load client / server';

const SIDES = ['Client', 'Server'] as const;
const med = (x: Spread | null) => (x ? formatNumber(x.median) : '–');

/** "62→80 / 63→82", or "19 / 20" without idle samples, or "–" when the rows carry no `<kind>Mb*` figure. */
function idleToLoad(ms: readonly Measurement[], v: string, kind: 'rss' | 'pss'): string {
  const load = SIDES.map((side) => spread(valuesOf(ms, v, `${kind}Mb${side}`)));
  const idle = SIDES.map((side) => spread(valuesOf(ms, v, `${kind}IdleMb${side}`)));
  if (load.every((x) => x === null)) return '–';
  return load.map((x, i) => (idle[i] ? `${med(idle[i]!)}→${med(x)}` : med(x))).join(' / ');
}

/** The memory cells of a variant's summary row: RSS and PSS per side, idle → under load (medians over rounds). */
export function memoryCells(ms: readonly Measurement[], v: string): Record<string, string> {
  return { [RSS_COLUMN]: idleToLoad(ms, v, 'rss'), [PSS_COLUMN]: idleToLoad(ms, v, 'pss') };
}

/** Under-load maximum over rounds ÷ the idle figure, for one side; null without both. */
export function growthOverIdle(ms: readonly Measurement[], v: string, kind: 'rss' | 'pss', side: 'Client' | 'Server'): number | null {
  const idle = spread(valuesOf(ms, v, `${kind}IdleMb${side}`));
  const load = spread(valuesOf(ms, v, `${kind}Mb${side}`));
  if (!idle || !load || idle.median <= 0) return null;
  return load.max / idle.median;
}

function sideText(ms: readonly Measurement[], v: string, side: 'Client' | 'Server'): string | null {
  const part = (kind: 'rss' | 'pss') => {
    const idle = spread(valuesOf(ms, v, `${kind}IdleMb${side}`));
    const load = spread(valuesOf(ms, v, `${kind}Mb${side}`));
    if (!load) return null;
    const growth = growthOverIdle(ms, v, kind, side);
    const head = idle ? `${med(idle)} → ${med(load)}` : `${med(load)} under load`;
    return `${kind.toUpperCase()} ${head} (max ${formatNumber(load.max)}${growth === null ? '' : `, ${growth.toFixed(2)}× idle`})`;
  };
  const parts = [part('rss'), part('pss')].filter((x): x is string => x !== null);
  return parts.length ? `${side.toLowerCase()} side ${parts.join(', ')}` : null;
}

/**
 * "tessera pair memory (MB, idle right after start → end of the measured windows, median; max over rounds and its
 * ratio to idle): client side RSS 48 → 55 (max 57, 1.19× idle), PSS …; server side …". Nothing when unmeasured.
 */
export function memoryHeadline(ms: readonly Measurement[], v: string): string[] {
  const sides = SIDES.map((side) => sideText(ms, v, side)).filter((x): x is string => x !== null);
  if (sides.length === 0) return [];
  return [`${v} memory (MB, idle right after start → at the end of each measured window, median; max over rounds and its ratio to idle): ${sides.join('; ')}.`];
}
