/**
 * The suite's output: markdown tables (each of our figures beside etcd's, and their ratio) and
 * an SVG chart of throughput against clients with p50/p99 latency, both generated from the
 * results, so the committed BENCHMARKS.md section and chart are what a run printed.
 */
import type { LoadResult, Workload } from './load.js';

/** One measured cell. */
export interface Cell {
  readonly system: string;
  readonly config: string;
  readonly workload: Workload;
  readonly valueBytes: number;
  readonly clients: number;
  readonly result: LoadResult;
  /** Server processes' CPU during the run, in cores. */
  readonly serverCpu: number;
}

/** The cluster size a config names ("file/tcp 3 nodes", "etcd 3 nodes"). */
const sizeOf = (config: string) => /(\d+) nodes/.exec(config)?.[1];

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '—');
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '—');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '—');

/** Ours beside etcd (same config, workload, size and clients), one row per cell. */
export function comparisonTable(cells: readonly Cell[], ours: string, reference: string): string {
  const rows: string[] = [
    '| config | workload | value | C | ops/s | etcd ops/s | ratio | p50 ms | etcd p50 | p99 ms | etcd p99 | p99.9 ms | etcd p99.9 | server CPU | etcd CPU | client CPU | errors |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const a of cells.filter((c) => c.system === ours)) {
    const b = cells.find(
      (c) =>
        c.system === reference &&
        c.workload === a.workload &&
        c.valueBytes === a.valueBytes &&
        c.clients === a.clients &&
        sizeOf(c.config) === sizeOf(a.config),
    );
    const r = a.result;
    const e = b?.result;
    rows.push(
      `| ${a.config} | ${a.workload} | ${a.valueBytes} B | ${a.clients} | ${f0(r.opsPerSecond)} | ${e ? f0(e.opsPerSecond) : '—'} | ${e ? `${f2(r.opsPerSecond / e.opsPerSecond)}x` : '—'} | ${f1(r.p50Ms)} | ${e ? f1(e.p50Ms) : '—'} | ${f1(r.p99Ms)} | ${e ? f1(e.p99Ms) : '—'} | ${f1(r.p999Ms)} | ${e ? f1(e.p999Ms) : '—'} | ${f2(a.serverCpu)} | ${b ? f2(b.serverCpu) : '—'} | ${f2(r.clientCpu)} | ${r.errors}${e ? ` / ${e.errors}` : ''} |`,
    );
  }
  return rows.join('\n');
}

/** Every cell of one system, for systems without a counterpart (the Map server). */
export function plainTable(cells: readonly Cell[], system: string): string {
  const rows = [
    '| workload | value | C | ops/s | p50 ms | p99 ms | p99.9 ms | server CPU | client CPU |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const c of cells.filter((x) => x.system === system)) {
    const r = c.result;
    rows.push(
      `| ${c.workload} | ${c.valueBytes} B | ${c.clients} | ${f0(r.opsPerSecond)} | ${f1(r.p50Ms)} | ${f1(r.p99Ms)} | ${f1(r.p999Ms)} | ${f2(c.serverCpu)} | ${f2(r.clientCpu)} |`,
    );
  }
  return rows.join('\n');
}

const COLORS: Record<string, string> = {
  'raft-kv': '#2f7ed8',
  etcd: '#e4572e',
  'node-http-map': '#8a8a8a',
};

/**
 * Two panels side by side for one workload and value size: ops/s against clients (log scale of
 * C), and p50 (solid) / p99 (dashed) latency against clients.
 */
export function chartSvg(
  cells: readonly Cell[],
  workload: Workload,
  valueBytes: number,
  title: string,
): string {
  const pick = cells.filter((c) => c.workload === workload && c.valueBytes === valueBytes);
  const systems = [...new Set(pick.map((c) => c.system))];
  const clients = [...new Set(pick.map((c) => c.clients))].sort((a, b) => a - b);
  const W = 420;
  const H = 260;
  const pad = { l: 58, r: 14, t: 34, b: 40 };
  const x = (c: number) =>
    pad.l + ((W - pad.l - pad.r) * clients.indexOf(c)) / Math.max(1, clients.length - 1);
  const panel = (
    dx: number,
    label: string,
    series: { system: string; dash: string; value: (c: Cell) => number }[],
  ) => {
    const values = series.flatMap((s) => pick.filter((c) => c.system === s.system).map(s.value));
    const max = Math.max(1, ...values) * 1.1;
    const y = (v: number) => pad.t + (H - pad.t - pad.b) * (1 - v / max);
    const out: string[] = [`<g transform="translate(${dx},0)">`];
    out.push(`<text x="${pad.l}" y="20" font-size="13" font-weight="600">${label}</text>`);
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4;
      out.push(
        `<line x1="${pad.l}" x2="${W - pad.r}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e5e5"/>`,
        `<text x="${pad.l - 6}" y="${y(v) + 4}" font-size="10" text-anchor="end">${v >= 100 ? f0(v) : f1(v)}</text>`,
      );
    }
    for (const c of clients) {
      out.push(
        `<text x="${x(c)}" y="${H - pad.b + 16}" font-size="10" text-anchor="middle">${c}</text>`,
      );
    }
    out.push(
      `<text x="${(W + pad.l) / 2}" y="${H - 6}" font-size="10" text-anchor="middle">concurrent clients</text>`,
    );
    for (const s of series) {
      const pts = clients
        .map((c) => pick.find((p) => p.system === s.system && p.clients === c))
        .filter((p): p is Cell => p !== undefined)
        .map((p) => `${x(p.clients).toFixed(1)},${y(s.value(p)).toFixed(1)}`);
      if (pts.length === 0) continue;
      out.push(
        `<polyline fill="none" stroke="${COLORS[s.system] ?? '#333'}" stroke-width="2" stroke-dasharray="${s.dash}" points="${pts.join(' ')}"/>`,
      );
    }
    out.push('</g>');
    return out.join('\n');
  };
  const legend = systems
    .map(
      (s, i) =>
        `<g transform="translate(${60 + i * 150},${H + 14})"><rect width="12" height="4" y="-4" fill="${COLORS[s] ?? '#333'}"/><text x="18" font-size="11">${s}</text></g>`,
    )
    .join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 56}" font-family="system-ui, sans-serif">`,
    `<title>${title}</title>`,
    '<rect width="100%" height="100%" fill="white"/>',
    `<text x="${W}" y="${H + 44}" font-size="12" text-anchor="middle" fill="#555">${title}</text>`,
    panel(
      0,
      'throughput (ops/s)',
      systems.map((s) => ({ system: s, dash: '', value: (c: Cell) => c.result.opsPerSecond })),
    ),
    panel(
      W,
      'latency (ms): p50 solid, p99 dashed',
      systems.flatMap((s) => [
        { system: s, dash: '', value: (c: Cell) => c.result.p50Ms },
        { system: s, dash: '5,4', value: (c: Cell) => c.result.p99Ms },
      ]),
    ),
    legend,
    '</svg>',
  ].join('\n');
}
