// Activity charts as inline SVG: bars for counts, a stepped line for lag.
import { h, svg, num, duration } from './lib.js';

const H = 170;
const PAD = { l: 52, r: 8, t: 10, b: 24 };

function niceMax(v, integer) {
  if (!(v > 0)) return integer ? 2 : 1;
  if (integer && v <= 4) return v <= 2 ? 2 : 4;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function hhmm(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return '';
  return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
}

// chart({title, key, kind: 'bar'|'line', buckets, bucketSeconds, windowLabel, fmt, width})
// width: the chart's width in CSS pixels (so its text is drawn at its real size).
export function chart(o) {
  const W = Math.max(260, Math.round(o.width || 520));
  const values = o.buckets.map((b) => (b[o.key] === null || b[o.key] === undefined ? null : Number(b[o.key])));
  const present = values.filter((v) => v !== null);
  const total = present.reduce((a, b) => a + b, 0);
  const peak = present.length ? Math.max(...present) : 0;
  const max = o.kind === 'line' ? niceMax(Math.max(peak, 1), false) : niceMax(peak, true);
  const fmt = o.fmt || num;
  const n = Math.max(values.length, 1);
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const x = (i) => PAD.l + (i * iw) / n;
  const y = (v) => PAD.t + ih - (v / max) * ih;

  const summary =
    o.kind === 'line'
      ? present.length
        ? `${o.title} over the ${o.windowLabel}: at most ${fmt(peak)}, latest ${fmt(present[present.length - 1])}`
        : `${o.title} over the ${o.windowLabel}: no data`
      : `${o.title} over the ${o.windowLabel}: ${num(total)} in total, at most ${num(peak)} in ${duration(o.bucketSeconds)}`;

  const g = svg('svg.chart-svg', {
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'aria-label': summary,
    preserveAspectRatio: 'xMidYMid meet',
  });
  g.append(svg('title', summary));
  // grid and y labels
  const half = o.kind === 'line' || Number.isInteger(max / 2);
  const ticks = o.kind === 'line' && !present.length ? [] : half ? [0, 0.5, 1] : [0, 1];
  for (const f of ticks) {
    const yy = y(max * f);
    g.append(svg('line.grid', { x1: PAD.l, x2: W - PAD.r, y1: yy, y2: yy }));
    g.append(svg('text.axis', { x: PAD.l - 6, y: yy + 4, 'text-anchor': 'end' }, fmt(max * f)));
  }
  if (o.kind === 'line' && !present.length) {
    g.append(svg('text.axis', { x: PAD.l + iw / 2, y: PAD.t + ih / 2, 'text-anchor': 'middle' }, 'no data in this window'));
  }
  // x labels: first, middle, last bucket
  if (o.buckets.length) {
    const idx = [0, Math.floor(o.buckets.length / 2), o.buckets.length - 1];
    for (const i of idx) {
      const anchor = i === 0 ? 'start' : i === o.buckets.length - 1 ? 'end' : 'middle';
      const xx = i === o.buckets.length - 1 ? x(i + 1) : x(i);
      g.append(svg('text.axis', { x: xx, y: H - 6, 'text-anchor': anchor }, hhmm(o.buckets[i].at)));
    }
  }
  if (o.kind === 'line') {
    let d = '';
    let pen = false;
    values.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}L${x(i + 1).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    if (d) g.append(svg('path.line', { class: 'series-' + o.key, d }));
    values.forEach((v, i) => {
      if (v === null) return;
      const dot = svg('circle.dot', { cx: ((x(i) + x(i + 1)) / 2).toFixed(1), cy: y(v).toFixed(1), r: '2.5' });
      dot.append(svg('title', `${hhmm(o.buckets[i].at)}: ${fmt(v)}`));
      g.append(dot);
    });
  } else {
    const bw = Math.max(1, iw / n - (n > 80 ? 1 : 2));
    values.forEach((v, i) => {
      if (!v) return;
      const top = y(v);
      const bar = svg('rect.bar', {
        class: 'series-' + o.key,
        x: x(i).toFixed(1),
        y: top.toFixed(1),
        width: bw.toFixed(1),
        height: Math.max(1, PAD.t + ih - top).toFixed(1),
      });
      bar.append(svg('title', `${hhmm(o.buckets[i].at)}: ${fmt(v)}`));
      g.append(bar);
    });
  }
  g.append(svg('line.baseline', { x1: PAD.l, x2: W - PAD.r, y1: PAD.t + ih, y2: PAD.t + ih }));

  const figure = o.kind === 'line' ? (present.length ? fmt(present[present.length - 1]) : '—') : num(total);
  return h(
    'figure.chart',
    { dataset: { chart: o.key } },
    h('figcaption', h('span.chart-title', o.title), h('span.chart-figure', { dataset: { figure: o.key } }, figure)),
    g,
  );
}
