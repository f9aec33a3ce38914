// Freehand and spline outlines, turned into the polygon the API stores (3-1000 points, "drawn" says how).

export const MAX_POINTS = 1000;

// Ramer-Douglas-Peucker: drops points closer than `tol` to the line through their neighbours.
export function simplify(points, tol) {
  if (points.length < 3) return points.slice();
  const keep = new Uint8Array(points.length);
  keep[0] = keep[points.length - 1] = 1;
  const stack = [[0, points.length - 1]];
  while (stack.length) {
    const [a, b] = stack.pop();
    const [ax, ay] = points[a], [bx, by] = points[b];
    const dx = bx - ax, dy = by - ay, len = Math.hypot(dx, dy) || 1;
    let far = -1, best = tol;
    for (let i = a + 1; i < b; i++) {
      const [px, py] = points[i];
      const d = len > 1e-9 && (dx || dy) ? Math.abs((px - ax) * dy - (py - ay) * dx) / len : Math.hypot(px - ax, py - ay);
      if (d > best) { best = d; far = i; }
    }
    if (far >= 0) { keep[far] = 1; stack.push([a, far], [far, b]); }
  }
  return points.filter((_, i) => keep[i]);
}

// A freehand trace (image pixels) → polygon points: simplified at `tol` (about a screen pixel), coarser if needed.
export function freehandPolygon(trace, tol) {
  let pts = simplify(trace, tol);
  while (pts.length > MAX_POINTS) { tol *= 1.5; pts = simplify(trace, tol); }
  return tidy(pts);
}

// A closed centripetal Catmull-Rom spline through the control points, sampled about every `step` image pixels.
export function splinePolygon(ctrl, step) {
  const n = ctrl.length;
  if (n < 3) return tidy(ctrl);
  let total = 0;
  for (let i = 0; i < n; i++) total += Math.hypot(ctrl[(i + 1) % n][0] - ctrl[i][0], ctrl[(i + 1) % n][1] - ctrl[i][1]);
  const per = Math.max(2, Math.min(Math.ceil(total / step / n), Math.floor(MAX_POINTS / n)));
  const out = [];
  for (let i = 0; i < n; i++) {
    const p0 = ctrl[(i - 1 + n) % n], p1 = ctrl[i], p2 = ctrl[(i + 1) % n], p3 = ctrl[(i + 2) % n];
    for (let k = 0; k < per; k++) out.push(catmullRom(p0, p1, p2, p3, k / per));
  }
  return tidy(out);
}

function catmullRom(p0, p1, p2, p3, u) {
  // centripetal parameterisation (alpha 0.5): no cusps or loops between close control points
  const t = (a, b, ti) => ti + Math.max(1e-6, Math.hypot(b[0] - a[0], b[1] - a[1]) ** 0.5);
  const t0 = 0, t1 = t(p0, p1, t0), t2 = t(p1, p2, t1), t3 = t(p2, p3, t2);
  const tt = t1 + (t2 - t1) * u;
  const lerp = (a, b, ta, tb) => [((tb - tt) * a[0] + (tt - ta) * b[0]) / (tb - ta), ((tb - tt) * a[1] + (tt - ta) * b[1]) / (tb - ta)];
  const a1 = lerp(p0, p1, t0, t1), a2 = lerp(p1, p2, t1, t2), a3 = lerp(p2, p3, t2, t3);
  const b1 = lerp(a1, a2, t0, t2), b2 = lerp(a2, a3, t1, t3);
  return lerp(b1, b2, t1, t2);
}

// Rounded to 0.1 px, no repeated neighbours.
function tidy(pts) {
  const out = [];
  for (const [x, y] of pts) {
    const p = [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
    const last = out[out.length - 1];
    if (!last || last[0] !== p[0] || last[1] !== p[1]) out.push(p);
  }
  if (out.length > 1 && out[0][0] === out[out.length - 1][0] && out[0][1] === out[out.length - 1][1]) out.pop();
  return out;
}
