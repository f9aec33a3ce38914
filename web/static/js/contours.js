// A mask's outline as closed polygons along pixel edges (image coordinates of pixel corners), for the outline view
// and the reviewer's dashed previous revision. Each loop keeps the mask on its right; diagonal neighbours are
// separate (4-connected). Cost: one pass over the mask's extent, plus the outline's length.

export function contours(mask) {
  const { width: W, height: H, data } = mask;
  if (mask.x1 < 0) return [];
  const x0 = Math.max(0, mask.x0), x1 = Math.min(W - 1, mask.x1), y0 = Math.max(0, mask.y0), y1 = Math.min(H - 1, mask.y1);
  const bw = x1 - x0 + 1;
  const set = (x, y) => x >= x0 && y >= y0 && x <= x1 && y <= y1 && data[y * W + x] === 1;
  const walked = new Uint8Array(bw * (y1 - y0 + 1));  // top edges already part of a loop
  const loops = [];
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      if (!set(x, y) || set(x, y - 1) || walked[(y - y0) * bw + x - x0]) continue;
      // a top edge nobody walked yet: follow the boundary from its left corner, heading east
      const pts = [];
      let vx = x, vy = y, dx = 1, dy = 0;
      do {
        if (dx === 1) walked[(vy - y0) * bw + vx - x0] = 1;
        vx += dx; vy += dy;
        // the two pixels ahead of the corner, left and right of the heading (right of (dx, dy) is (-dy, dx))
        const rx = -dy, ry = dx;
        const ar = set(Math.floor(vx + (dx + rx) / 2), Math.floor(vy + (dy + ry) / 2));
        const al = set(Math.floor(vx + (dx - rx) / 2), Math.floor(vy + (dy - ry) / 2));
        let ndx = dx, ndy = dy;
        if (!ar) { ndx = rx; ndy = ry; } else if (al) { ndx = -rx; ndy = -ry; }
        if (ndx !== dx || ndy !== dy) pts.push([vx, vy]);
        dx = ndx; dy = ndy;
      } while (vx !== x || vy !== y || dx !== 1);
      loops.push(pts);
    }
  }
  return loops;
}

// The loops as one Path2D (for a stroke per frame).
export function contourPath(loops) {
  const p = new Path2D();
  for (const pts of loops) {
    pts.forEach(([x, y], i) => (i ? p.lineTo(x, y) : p.moveTo(x, y)));
    p.closePath();
  }
  return p;
}
