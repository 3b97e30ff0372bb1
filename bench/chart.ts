// A text bar chart for generated Markdown pages: plain characters in a code block, so it renders anywhere.

/** Horizontal bars of ops/s per workload, each row scaled to its fastest system (a chart that renders anywhere). */
export function barChart(groups: { label: string; bars: { name: string; value: number }[] }[], width = 40): string {
  const nameWidth = Math.max(...groups.flatMap((g) => g.bars.map((b) => b.name.length)));
  const lines: string[] = [];
  for (const g of groups) {
    const bars = g.bars.filter((b) => Number.isFinite(b.value));
    const top = Math.max(...bars.map((b) => b.value));
    lines.push(g.label);
    for (const b of bars)
      lines.push(
        `  ${b.name.padEnd(nameWidth)} ${"█".repeat(Math.max(1, Math.round((b.value / top) * width)))} ${b.value}`,
      );
  }
  return lines.join("\n");
}
