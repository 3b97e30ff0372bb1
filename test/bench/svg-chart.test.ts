// The throughput-against-concurrency chart of npm run bench:compare (bench/svg-chart.ts): a well-formed SVG with
// one polyline per system, its points in concurrency order on a log x axis, and its labels.
import { describe, expect, it } from "vitest";
import { lineChartSvg, niceTicks, type ChartSeries } from "../../bench/svg-chart.js";

/** Tags balance, attributes are quoted, and text holds no raw `<` or bare `&`: enough of XML's well-formedness. */
function checkWellFormed(xml: string): void {
  const stack: string[] = [];
  let last = 0;
  for (const m of xml.matchAll(/<[^>]*>/g)) {
    const text = xml.slice(last, m.index);
    if (text.includes("<") || /&(?!(amp|lt|gt|quot|apos);)/.test(text)) throw new Error(`bad text: ${text}`);
    last = m.index + m[0].length;
    const tag = m[0];
    const closing = /^<\/([\w:-]+)\s*>$/.exec(tag);
    if (closing) {
      const open = stack.pop();
      if (open !== closing[1]) throw new Error(`</${closing[1]}> closes <${open}>`);
      continue;
    }
    const opening = /^<([\w:-]+)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>$/.exec(tag);
    if (!opening) throw new Error(`malformed tag: ${tag}`);
    if (/&(?!(amp|lt|gt|quot|apos);)/.test(opening[2])) throw new Error(`bare & in ${tag}`);
    if (opening[3] !== "/") stack.push(opening[1]);
  }
  if (stack.length > 0) throw new Error(`unclosed: ${stack.join(", ")}`);
  if (xml.slice(last).trim() !== "") throw new Error("text after the root element");
}

const attr = (tag: string, name: string) => new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];
const polylines = (svg: string) =>
  [...svg.matchAll(/<polyline [^>]*>/g)].map((m) =>
    attr(m[0], "points")!
      .split(" ")
      .map((p) => p.split(",").map(Number) as [number, number]),
  );

const SWEEP = [1, 16, 64, 256, 1024];
const series: ChartSeries[] = [
  { name: "Concord", points: SWEEP.map((x, i) => ({ x, y: [900, 6000, 13000, 15000, 15500][i] })) },
  { name: "etcd", points: SWEEP.map((x, i) => ({ x, y: [700, 2500, 3900, 5000, 5200][i] })) },
  // given out of order, as a caller might: drawn by concurrency all the same
  { name: "ZooKeeper", points: [1024, 1, 256, 16, 64].map((x) => ({ x, y: x === 1 ? 1100 : 2000 + x })) },
];
const options = { title: "put throughput against concurrency", xLabel: "concurrency (log scale)", yLabel: "ops/s" };

describe("lineChartSvg", () => {
  it("writes a well-formed SVG document", () => {
    const svg = lineChartSvg(series, options);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    checkWellFormed(svg);
    expect(() => checkWellFormed("<svg><g></svg>")).toThrow(/closes/); // the check itself can fail
    expect(() => checkWellFormed("<svg>a & b</svg>")).toThrow(/bad text/);
  });

  it("draws one polyline per system, in the series' colours, each with one point per concurrency", () => {
    const svg = lineChartSvg(series, options);
    const lines = polylines(svg);
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).toHaveLength(SWEEP.length);
    expect([...svg.matchAll(/<g class="series" data-name="([^"]*)"/g)].map((m) => m[1])).toEqual([
      "Concord",
      "etcd",
      "ZooKeeper",
    ]);
    const strokes = [...svg.matchAll(/<polyline [^>]*>/g)].map((m) => attr(m[0], "stroke"));
    expect(new Set(strokes).size).toBe(3);
  });

  it("places points left to right by concurrency on a log axis, and higher throughput higher up", () => {
    const [concord, etcd, zookeeper] = polylines(lineChartSvg(series, options));
    for (const line of [concord, etcd, zookeeper]) {
      const xs = line.map(([x]) => x);
      expect(xs).toEqual([...xs].sort((a, b) => a - b));
      expect(new Set(xs).size).toBe(xs.length);
      // log scale: 16→64 and 64→256 are both ×4, so equal steps; 1→16 is ×16, twice that
      const step = (i: number) => xs[i + 1] - xs[i];
      expect(step(1)).toBeCloseTo(step(2), 0);
      expect(step(0)).toBeCloseTo(2 * step(1), 0);
    }
    expect(concord.map(([x]) => x)).toEqual(etcd.map(([x]) => x)); // the same concurrency, the same x
    // SVG's y grows downwards: each Concord point is above etcd's at the same concurrency
    concord.forEach(([, y], i) => expect(y).toBeLessThan(etcd[i][1]));
    expect(zookeeper[0][1]).toBeGreaterThan(zookeeper[4][1]); // c=1 (1,100 ops/s) below c=1,024 (3,024)
  });

  it("labels the title, the axes, the concurrency ticks, the legend and each point", () => {
    const svg = lineChartSvg(series, options);
    const texts = [...svg.matchAll(/<text [^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    expect(texts).toEqual(
      expect.arrayContaining([options.title, options.xLabel, options.yLabel, "Concord", "etcd", "ZooKeeper"]),
    );
    expect(texts).toEqual(expect.arrayContaining(["1", "16", "64", "256", "1,024"]));
    expect(texts).toContain("20,000"); // the y axis reaches above the largest value (15,500) at a round tick
    expect(svg).toContain("<title>Concord, 1,024: 15,500</title>");
  });

  it("gives the same bytes for the same input", () => {
    expect(lineChartSvg(series, options)).toBe(lineChartSvg(structuredClone(series), options));
  });

  it("leaves out points without a figure and series with none, and escapes names", () => {
    const svg = lineChartSvg(
      [
        {
          name: "A & <B>",
          points: [
            { x: 1, y: 10 },
            { x: 16, y: NaN },
            { x: 64, y: 30 },
          ],
        },
        { name: "skipped", points: SWEEP.map((x) => ({ x, y: NaN })) },
      ],
      options,
    );
    checkWellFormed(svg);
    expect(polylines(svg)).toEqual([expect.any(Array)]);
    expect(polylines(svg)[0]).toHaveLength(2);
    expect(svg).toContain("A &amp; &lt;B&gt;");
    expect(svg).not.toContain("skipped");
  });

  it("still draws axes and says so when there is no data at all", () => {
    const svg = lineChartSvg([{ name: "none", points: [] }], options);
    checkWellFormed(svg);
    expect(polylines(svg)).toEqual([]);
    expect(svg).toContain(">no data</text>");
  });
});

describe("niceTicks", () => {
  it("starts at 0 and ends at the first round step at or above the maximum", () => {
    expect(niceTicks(15_500)).toEqual([0, 5000, 10_000, 15_000, 20_000]);
    expect(niceTicks(10_000)).toEqual([0, 2000, 4000, 6000, 8000, 10_000]);
    expect(niceTicks(0.9)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0)).toEqual([0, 1]);
  });
});
