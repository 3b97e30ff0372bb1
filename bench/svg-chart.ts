// A line chart as a standalone SVG document, for generated pages (docs/benchmarks-concurrency.svg): a log-scale
// x axis (concurrency doubles and quadruples), a linear y axis from 0 (so heights read as ratios), one polyline
// with its points per series, a legend and a title. Pure: the same input gives the same bytes.

export interface ChartSeries {
  name: string;
  /** Points with a non-finite y (a system not run, or no figure) are left out. */
  points: readonly { x: number; y: number }[];
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
}

// Colours by series position: the first three are the compared systems' throughout the page.
const PALETTE = ["#1f6fb4", "#d1432f", "#2e9c48", "#8a55b8", "#c7861a", "#555555"];
const MARGIN = { left: 78, right: 190, top: 44, bottom: 56 };

export function lineChartSvg(series: readonly ChartSeries[], o: LineChartOptions): string {
  const width = o.width ?? 760;
  const height = o.height ?? 420;
  const plot = { x0: MARGIN.left, x1: width - MARGIN.right, y0: height - MARGIN.bottom, y1: MARGIN.top };
  const drawn = series
    .map((s, i) => ({
      name: s.name,
      colour: PALETTE[i % PALETTE.length],
      points: s.points.filter((p) => Number.isFinite(p.x) && p.x > 0 && Number.isFinite(p.y)).sort((a, b) => a.x - b.x),
    }))
    .filter((s) => s.points.length > 0);
  const xs = [...new Set(drawn.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const yTicks = niceTicks(Math.max(0, ...drawn.flatMap((s) => s.points.map((p) => p.y))));
  const yTop = yTicks[yTicks.length - 1];

  // log x: the smallest and largest x at the plot's edges, inset so end points are not on the frame.
  const lo = Math.log(xs[0] ?? 1);
  const hi = Math.log(xs[xs.length - 1] ?? 1);
  const inset = 16;
  const xAt = (x: number) =>
    hi === lo
      ? (plot.x0 + plot.x1) / 2
      : plot.x0 + inset + ((Math.log(x) - lo) / (hi - lo)) * (plot.x1 - plot.x0 - 2 * inset);
  const yAt = (y: number) => plot.y0 - (y / yTop) * (plot.y0 - plot.y1);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${n(width / 2)}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(o.title)}</text>`,
  ];
  for (const t of yTicks) {
    const y = n(yAt(t));
    out.push(
      `<line x1="${plot.x0}" y1="${y}" x2="${plot.x1}" y2="${y}" stroke="#e3e3e3"/>`,
      `<text x="${plot.x0 - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(thousands(t))}</text>`,
    );
  }
  for (const x of xs) {
    const at = n(xAt(x));
    out.push(
      `<line x1="${at}" y1="${plot.y0}" x2="${at}" y2="${plot.y0 + 5}" stroke="#333333"/>`,
      `<text x="${at}" y="${plot.y0 + 18}" text-anchor="middle">${esc(thousands(x))}</text>`,
    );
  }
  out.push(
    `<line x1="${plot.x0}" y1="${plot.y0}" x2="${plot.x1}" y2="${plot.y0}" stroke="#333333"/>`,
    `<line x1="${plot.x0}" y1="${plot.y0}" x2="${plot.x0}" y2="${plot.y1}" stroke="#333333"/>`,
    `<text x="${n((plot.x0 + plot.x1) / 2)}" y="${height - 14}" text-anchor="middle">${esc(o.xLabel)}</text>`,
    `<text x="18" y="${n((plot.y0 + plot.y1) / 2)}" text-anchor="middle" transform="rotate(-90 18 ${n((plot.y0 + plot.y1) / 2)})">${esc(o.yLabel)}</text>`,
  );
  if (drawn.length === 0)
    out.push(
      `<text x="${n((plot.x0 + plot.x1) / 2)}" y="${n((plot.y0 + plot.y1) / 2)}" text-anchor="middle">no data</text>`,
    );
  drawn.forEach((s, i) => {
    const at = s.points.map((p) => ({ ...p, cx: n(xAt(p.x)), cy: n(yAt(p.y)) }));
    out.push(
      `<g class="series" data-name="${esc(s.name)}">`,
      `<polyline fill="none" stroke="${s.colour}" stroke-width="2" points="${at.map((p) => `${p.cx},${p.cy}`).join(" ")}"/>`,
      ...at.map(
        (p) =>
          `<circle cx="${p.cx}" cy="${p.cy}" r="3.5" fill="${s.colour}"><title>${esc(`${s.name}, ${thousands(p.x)}: ${thousands(p.y)}`)}</title></circle>`,
      ),
      `</g>`,
    );
    const ly = plot.y1 + 8 + i * 20;
    out.push(
      `<line x1="${plot.x1 + 16}" y1="${ly}" x2="${plot.x1 + 40}" y2="${ly}" stroke="${s.colour}" stroke-width="2"/>`,
      `<circle cx="${plot.x1 + 28}" cy="${ly}" r="3.5" fill="${s.colour}"/>`,
      `<text x="${plot.x1 + 46}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`,
    );
  });
  out.push("</svg>", "");
  return out.join("\n");
}

/** 0 and 4–8 evenly spaced round values (1, 2 or 5 × 10^k apart) up to at least `max`. */
export function niceTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / 5;
  const mag = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= rough)!;
  const ticks: number[] = [];
  for (let i = 0; ticks.length === 0 || ticks[ticks.length - 1] < max; i++) ticks.push(+(i * step).toPrecision(12));
  return ticks;
}

/** 1024 → "1,024"; fractions keep up to 3 decimals. Locale-free, so the output does not depend on the machine. */
function thousands(v: number): string {
  const [int, frac] = String(+v.toFixed(3)).split(".");
  return int.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + (frac ? "." + frac : "");
}

const n = (v: number) => String(+v.toFixed(1));

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
