// COCO run-length encoding of binary masks, byte for byte as pycocotools.mask writes it (docs/segmentation.md).
// RLE walks the image column-major (down the first column, then the next) while a canvas is row-major, so decode
// returns and encode takes a row-major Uint8Array of 0/1, width × height.

// counts string → run lengths (background first). Arithmetic in doubles: a run may need up to 35 bits of groups.
export function parseCounts(s) {
  const runs = [];
  let p = 0;
  while (p < s.length) {
    let x = 0, k = 0, c;
    do {
      c = s.charCodeAt(p++) - 48;
      if (c < 0 || c > 63) throw new Error("RLE counts: bad character");
      x += (c & 0x1f) * 2 ** (5 * k);
      k++;
      if (!(c & 0x20) && (c & 0x10)) x -= 2 ** (5 * k);  // the last group's 0x10 is the sign
    } while (c & 0x20 && p < s.length);
    if (c & 0x20) throw new Error("RLE counts: truncated");
    if (runs.length > 2) x += runs[runs.length - 2];
    runs.push(x);
  }
  return runs;
}

// run lengths → counts string; from the fourth run on, each is written as the difference to the run two before.
export function formatCounts(runs) {
  const out = [];
  for (let i = 0; i < runs.length; i++) {
    let x = runs[i];
    if (i > 2) x -= runs[i - 2];
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x >>= 5;  // arithmetic: a negative difference keeps its sign (values stay far inside 32 bits)
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      out.push(c + 48);
    }
  }
  let s = "";
  for (let i = 0; i < out.length; i += 8192) s += String.fromCharCode.apply(null, out.slice(i, i + 8192));
  return s;
}

// {size: [h, w], counts} → {width, height, data} (row-major, 1 where set). Runs must cover h·w exactly.
export function decode(rle, into = null) {
  const [h, w] = rle.size;
  const runs = typeof rle.counts === "string" ? parseCounts(rle.counts) : rle.counts;
  const data = into || new Uint8Array(w * h);
  if (into) data.fill(0);
  let x = 0, y = 0, total = 0;
  for (let i = 0; i < runs.length; i++) {
    let n = runs[i];
    if (n < 0) throw new Error("RLE counts: negative run");
    total += n;
    if (total > w * h) throw new Error("RLE counts: runs exceed the mask");
    if (i & 1) {  // a run of set pixels, possibly over several columns
      while (n > 0) {
        const m = Math.min(n, h - y);
        for (let k = 0, j = y * w + x; k < m; k++, j += w) data[j] = 1;
        y += m; n -= m;
        if (y === h) { y = 0; x++; }
      }
    } else {
      y += n;
      x += Math.floor(y / h);
      y %= h;
    }
  }
  if (total !== w * h) throw new Error("RLE counts: runs do not cover the mask");
  return { width: w, height: h, data };
}

// Row-major 0/1 bytes → {size: [h, w], counts}. Columns left of `fromX` and right of `toX` are known to be empty
// (a caller that knows the mask's extent skips them instead of walking every pixel).
export function encode(data, width, height, fromX = 0, toX = width - 1) {
  return { size: [height, width], counts: formatCounts(runsOf(data, width, height, fromX, toX)) };
}

export function runsOf(data, width, height, fromX = 0, toX = width - 1) {
  const runs = [];
  let prev = 0, count = fromX * height;
  if (toX >= fromX) {
    for (let x = fromX; x <= toX; x++) {
      for (let j = x, end = x + height * width; j < end; j += width) {
        const v = data[j] ? 1 : 0;
        if (v !== prev) { runs.push(count); count = 0; prev = v; }
        count++;
      }
    }
  }
  const trailing = (width - 1 - Math.max(toX, fromX - 1)) * height;  // the empty columns right of toX
  if (trailing && prev) { runs.push(count); count = trailing; } else count += trailing;
  runs.push(count);
  return runs;
}

// Pixels set in an RLE, without decoding it.
export function area(rle) {
  const runs = typeof rle.counts === "string" ? parseCounts(rle.counts) : rle.counts;
  let n = 0;
  for (let i = 1; i < runs.length; i += 2) n += runs[i];
  return n;
}

// Pixels set in both (same size), by walking the two run lists together.
export function intersection(a, b) {
  const ra = typeof a.counts === "string" ? parseCounts(a.counts) : a.counts;
  const rb = typeof b.counts === "string" ? parseCounts(b.counts) : b.counts;
  let i = 0, j = 0, ea = ra[0] ?? Infinity, eb = rb[0] ?? Infinity, pos = 0, n = 0;
  while (i < ra.length && j < rb.length) {
    const next = Math.min(ea, eb);
    if (i & 1 && j & 1) n += next - pos;
    pos = next;
    if (ea === next) { i++; ea += ra[i] ?? 0; }
    if (eb === next) { j++; eb += rb[j] ?? 0; }
  }
  return n;
}

// Dice coefficient 2|A∩B| / (|A| + |B|) of two RLEs of one image; null when both are empty.
export function dice(a, b) {
  const sa = area(a), sb = area(b);
  return sa + sb ? (2 * intersection(a, b)) / (sa + sb) : null;
}

// The union of several RLEs of one image (for comparing all masks of one label), as run lengths.
export function union(list) {
  if (list.length === 1) return list[0];
  const [h, w] = list[0].size;
  const data = new Uint8Array(w * h);
  const one = new Uint8Array(w * h);
  for (const r of list) {
    decode(r, one);
    for (let k = 0; k < data.length; k++) data[k] |= one[k];
  }
  return encode(data, w, h);
}
