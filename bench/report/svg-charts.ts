// Hand-written SVG charts (no chart library): horizontal grouped bars with min–max whiskers, and latency boxes.

export interface Bar {
  readonly median: number;
  readonly min?: number;
  readonly max?: number;
}

export interface BarGroup {
  readonly label: string;
  /** One entry per series; null = not measured (drawn as "n/a"). */
  readonly values: readonly (Bar | null)[];
}

export interface GroupedBarChart {
  readonly title: string;
  readonly unit: string;
  readonly series: readonly string[];
  readonly groups: readonly BarGroup[];
  /** Vertical reference lines, e.g. a crypto floor. */
  readonly refLines?: readonly { readonly value: number; readonly label: string }[];
}

export interface LatencyRow {
  readonly label: string;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
}

const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#b07aa1'];
const PLOT_WIDTH = 480;
const RIGHT = 110;

/** Room for the row labels on the left (≈ 6.6 px per character at 12 px), so long variant names are not cut. */
function leftMargin(labels: readonly string[]): number {
  return Math.round(Math.min(420, Math.max(120, 16 + Math.max(0, ...labels.map((l) => l.length)) * 6.6)));
}
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A "nice" axis maximum and step (1, 2, 2.5 or 5 × 10^k) with 4–6 ticks covering `max`. */
export function niceScale(max: number): { max: number; step: number } {
  if (!(max > 0)) return { max: 1, step: 0.25 };
  const rough = max / 5;
  const pow = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= rough)!;
  return { max: Math.ceil(max / step - 1e-9) * step, step };
}

/** The opening tag with a title, so the chart has alternative text (and biome's a11y rule is met). */
function svgOpen(width: number, height: number, title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(title)}">\n<title>${escapeXml(title)}</title>`;
}

function fmt(x: number): string {
  if (x >= 1000) return Math.round(x).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toPrecision(2);
}

function axis(x0: number, plotW: number, top: number, bottom: number, scale: { max: number; step: number }, unit: string): string[] {
  const out: string[] = [];
  for (let v = 0; v <= scale.max + 1e-9; v += scale.step) {
    const x = x0 + (v / scale.max) * plotW;
    out.push(`<line x1="${x.toFixed(1)}" y1="${top}" x2="${x.toFixed(1)}" y2="${bottom}" stroke="#ddd"/>`);
    out.push(`<text x="${x.toFixed(1)}" y="${bottom + 14}" font-size="11" text-anchor="middle" ${FONT}>${fmt(v)}</text>`);
  }
  out.push(`<text x="${x0 + plotW / 2}" y="${bottom + 30}" font-size="12" text-anchor="middle" ${FONT}>${escapeXml(unit)}</text>`);
  return out;
}

export function groupedBarChart(c: GroupedBarChart): string {
  const barH = 14;
  const gap = 12;
  const legendH = c.series.length > 1 ? 22 : 0;
  const top = 34 + legendH;
  const groupH = c.series.length * barH + gap;
  const plotBottom = top + c.groups.length * groupH;
  const height = plotBottom + 42;
  const LEFT = leftMargin(c.groups.map((g) => g.label));
  const WIDTH = LEFT + PLOT_WIDTH + RIGHT;
  const plotW = PLOT_WIDTH;
  const maxValue = Math.max(
    ...c.groups.flatMap((g) => g.values.map((v) => (v ? Math.max(v.median, v.max ?? 0) : 0))),
    ...(c.refLines ?? []).map((r) => r.value),
  );
  const scale = niceScale(maxValue);
  const xOf = (v: number) => LEFT + (v / scale.max) * plotW;
  const parts: string[] = [
    svgOpen(WIDTH, height, c.title),
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="${WIDTH / 2}" y="20" font-size="14" font-weight="bold" text-anchor="middle" ${FONT}>${escapeXml(c.title)}</text>`,
  ];
  if (legendH) {
    let x = LEFT;
    c.series.forEach((s, i) => {
      parts.push(`<rect x="${x}" y="${30}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
      parts.push(`<text x="${x + 16}" y="${40}" font-size="12" ${FONT}>${escapeXml(s)}</text>`);
      x += 24 + s.length * 7;
    });
  }
  parts.push(...axis(LEFT, plotW, top - 4, plotBottom, scale, c.unit));
  c.groups.forEach((g, gi) => {
    const gy = top + gi * groupH;
    parts.push(`<text x="${LEFT - 8}" y="${gy + (c.series.length * barH) / 2 + 4}" font-size="12" text-anchor="end" ${FONT}>${escapeXml(g.label)}</text>`);
    g.values.forEach((v, si) => {
      const y = gy + si * barH;
      const color = COLORS[si % COLORS.length];
      if (!v) {
        parts.push(`<text x="${LEFT + 4}" y="${y + barH - 3}" font-size="10" fill="#888" ${FONT}>n/a</text>`);
        return;
      }
      parts.push(`<rect x="${LEFT}" y="${y + 1}" width="${Math.max(0.5, xOf(v.median) - LEFT).toFixed(1)}" height="${barH - 2}" fill="${color}"/>`);
      if (v.min !== undefined && v.max !== undefined && v.max > v.min) {
        const cy = y + barH / 2;
        parts.push(`<line x1="${xOf(v.min).toFixed(1)}" y1="${cy}" x2="${xOf(v.max).toFixed(1)}" y2="${cy}" stroke="#222" stroke-width="1"/>`);
        for (const e of [v.min, v.max]) parts.push(`<line x1="${xOf(e).toFixed(1)}" y1="${cy - 4}" x2="${xOf(e).toFixed(1)}" y2="${cy + 4}" stroke="#222"/>`);
      }
      const labelX = Math.max(xOf(v.median), v.max !== undefined ? xOf(v.max) : 0) + 4;
      parts.push(`<text x="${labelX.toFixed(1)}" y="${y + barH - 3}" font-size="10" ${FONT}>${fmt(v.median)}</text>`);
    });
  });
  for (const r of c.refLines ?? []) {
    const x = xOf(r.value).toFixed(1);
    parts.push(`<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${plotBottom}" stroke="#c00" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${x}" y="${plotBottom - 4}" dx="3" font-size="10" fill="#c00" ${FONT}>${escapeXml(r.label)}</text>`);
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** Per row: a box from p50 to p99, a tick at p90, a whisker to p99.9 (medians over rounds). */
export function latencyChart(title: string, rows: readonly LatencyRow[]): string {
  const rowH = 26;
  const top = 40;
  const plotBottom = top + rows.length * rowH;
  const height = plotBottom + 42;
  const LEFT = leftMargin(rows.map((r) => r.label));
  const WIDTH = LEFT + PLOT_WIDTH + RIGHT;
  const plotW = PLOT_WIDTH;
  const scale = niceScale(Math.max(...rows.map((r) => r.p999), 0));
  const xOf = (v: number) => LEFT + (Math.min(v, scale.max) / scale.max) * plotW;
  const parts: string[] = [
    svgOpen(WIDTH, height, title),
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="${WIDTH / 2}" y="20" font-size="14" font-weight="bold" text-anchor="middle" ${FONT}>${escapeXml(title)}</text>`,
    `<text x="${WIDTH / 2}" y="34" font-size="11" text-anchor="middle" fill="#555" ${FONT}>box p50–p99, tick p90, whisker to p99.9</text>`,
    ...axis(LEFT, plotW, top, plotBottom, scale, 'ms'),
  ];
  rows.forEach((r, i) => {
    const y = top + i * rowH + 5;
    const h = rowH - 10;
    const color = COLORS[i % COLORS.length];
    parts.push(`<text x="${LEFT - 8}" y="${y + h / 2 + 4}" font-size="12" text-anchor="end" ${FONT}>${escapeXml(r.label)}</text>`);
    parts.push(`<line x1="${xOf(r.p99).toFixed(1)}" y1="${y + h / 2}" x2="${xOf(r.p999).toFixed(1)}" y2="${y + h / 2}" stroke="#222"/>`);
    parts.push(`<line x1="${xOf(r.p999).toFixed(1)}" y1="${y + 2}" x2="${xOf(r.p999).toFixed(1)}" y2="${y + h - 2}" stroke="#222"/>`);
    parts.push(`<rect x="${xOf(r.p50).toFixed(1)}" y="${y}" width="${Math.max(1, xOf(r.p99) - xOf(r.p50)).toFixed(1)}" height="${h}" fill="${color}" fill-opacity="0.75"/>`);
    parts.push(`<line x1="${xOf(r.p90).toFixed(1)}" y1="${y}" x2="${xOf(r.p90).toFixed(1)}" y2="${y + h}" stroke="#fff" stroke-width="2"/>`);
    parts.push(`<text x="${(xOf(r.p999) + 4).toFixed(1)}" y="${y + h / 2 + 4}" font-size="10" ${FONT}>${fmt(r.p50)} / ${fmt(r.p99)} / ${fmt(r.p999)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
