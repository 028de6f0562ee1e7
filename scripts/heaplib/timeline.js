/* scripts/heap-timeline's page (inlined into it): replays a recording of
 * PTMALLOC_RS_RECORD (docs/record-format.md) call by call.
 *
 * The data (made by scripts/heaplib/record.py, embedded in the page,
 * deflated) holds the calls as columns and, per call, what it changed,
 * already resolved: chunk puts and removals per heap ("ops") and heap
 * extents ("hops").  The state at call i is a Map per heap, address ->
 * index of the op that last put that chunk.  Loading runs once through
 * every call and keeps a keyframe (a copy of the state) whenever the ops
 * since the last one reach max(KF_MIN_OPS, live chunks), and for each op
 * the op it replaced (prevOp): a move of up to NEAR calls applies them or
 * takes them back (undoCall), a longer jump restores the keyframe before it
 * and applies the calls after it, so a move costs at most about that many
 * ops, whatever the recording's length.
 *
 * The event list holds one element per call, [data-event=SEQ], all of them
 * while the recording has at most FULL_LIST calls; past that only the rows
 * on screen and ROW_PAD on each side exist (virtual scrolling), and the
 * list's data-event-count says how many calls there are.  A heap with more
 * than MAX_DRAWN chunks is drawn as a window of that many chunks around the
 * current call's chunk.
 *
 * For scripts: window.heapTimeline.goto(seq), .step(n), .seq, .index,
 * .count, .search(addr); <body data-ready="1" data-seq=SEQ> once drawn.
 */
(function () {
  'use strict';

  const FULL_LIST = 20000;      // up to this many calls, every row is in the DOM
  const ROW_H = 20;             // px per event row (matches .ev in the CSS)
  const ROW_PAD = 60;           // rows kept above and below the visible ones
  const KF_MIN_OPS = 2000;
  const NEAR = 256;             // calls applied or taken back rather than a keyframe
  const MAX_DRAWN = 1000;       // chunks drawn per heap
  const MIN_W = 3;              // narrowest chunk, px
  const LABEL_W = 118;          // row address labels, px
  const MAX_HITS = 2000;

  // scripts/heap-map's STATES (the source of these colours) plus the states
  // only a recording has.
  const STATES = [
    ['inuse', 'in use', '#4C78A8'], ['tcache', 'tcache', '#F58518'], ['fast', 'fastbin', '#E45756'],
    ['unsorted', 'unsorted bin', '#B279A2'], ['small', 'small bin', '#54A24B'],
    ['large', 'large bin', '#2E8B8B'], ['top', 'top', '#D0D0D0'],
  ];
  const EXTRA_STATES = [['largecache', 'large cache (fast profile)', '#9D755D'],
    ['mmapped', "mmap'd chunk (in use)", '#4C78A8']];
  // state codes of the format's chunk records; 0: removed
  const WORD = ['removed', 'inuse', 'tcache', 'fast', 'unsorted', 'small', 'large', 'top', 'mmapped',
    'gone', 'largecache'];
  const LABEL = {};
  for (const [w, l] of STATES.concat(EXTRA_STATES)) LABEL[w] = l;
  const INUSE_LIKE = new Set([1, 8, 10]);

  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));

  let D, N, C, OP, HOP, SYS;
  let threads, tidIndex;
  let state = null;          // {maps: [Map addr -> op index], ext: [[lo, hi] | null], live, inuse, total}
  let cur = -1;              // index of the current call (its effects applied)
  const keyframes = [];      // {pos, maps: [[Float64Array addrs, Int32Array ops]], ext}
  let inuseSeries, totalSeries;
  let maxNonTop = [], maxChunk = [];
  let listWindow = [-1, -1];
  let hitAddr = null;

  // --------------------------------------------------------------- data

  async function loadData() {
    const el = $('heap-timeline-data');
    const text = el.textContent.trim();
    if (el.dataset.encoding === 'deflate') {
      const raw = atob(text);
      const bytes = new Uint8Array(raw.length);
      for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
      return JSON.parse(await new Response(stream).text());
    }
    return JSON.parse(text);
  }

  function hex(v) {
    if (typeof v === 'string') return v;
    return '0x' + v.toString(16);
  }
  function num(v) { return typeof v === 'string' ? v : String(v); }
  function human(n) {
    const u = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return i === 0 ? n + ' bytes' : (n >= 100 ? n.toFixed(0) : n.toFixed(1)) + ' ' + u[i];
  }
  function arg(i, col) {
    const big = D.big[i];
    if (big) return big[col];
    return C['a' + col][i];
  }
  function signed(v) {
    if (typeof v === 'string') {
      const b = BigInt(v);
      return String(b >= (1n << 63n) ? b - (1n << 64n) : b);
    }
    return String(v);
  }

  // ---------------------------------------------------------- the state

  // maps[h]: address -> op index; sorted[h]: the addresses in order (kept
  // only in the state being shown: the loading pass sorts at keyframes);
  // free[h]: the chunks of maps[h] in a tcache or a bin; count[state];
  // ver[h]: changes whenever heap h does (what the drawing caches on).
  let VER = 0;
  function emptyState() {
    return { maps: D.heaps.map(() => new Map()), free: D.heaps.map(() => new Map()), sorted: null,
      ver: D.heaps.map(() => ++VER), ext: D.heaps.map(() => null), count: new Array(WORD.length).fill(0),
      live: 0, inuse: 0, total: 0 };
  }

  function extBytes(e) { return e && e[1] > e[0] ? e[1] - e[0] : 0; }

  function putChunk(st, h, a, k) {   // a not in maps[h]; k the op that puts it
    st.maps[h].set(a, k);
    const s = OP.state[k];
    st.live++;
    st.count[s]++;
    if (INUSE_LIKE.has(s)) st.inuse += OP.size[k];
    if (s === 8) st.total += OP.size[k];
    if (s >= 2 && s <= 6) st.free[h].set(a, k);
  }
  function dropChunk(st, h, a, k) {  // k the op that put the chunk at a
    st.maps[h].delete(a);
    const s = OP.state[k];
    st.live--;
    st.count[s]--;
    if (INUSE_LIKE.has(s)) st.inuse -= OP.size[k];
    if (s === 8) st.total -= OP.size[k];
    if (s >= 2 && s <= 6) st.free[h].delete(a);
  }
  function setExt(st, h, e) {
    st.total -= extBytes(st.ext[h]);
    st.ext[h] = e;
    st.total += extBytes(e);
    st.ver[h] = ++VER;
  }

  // Applies ops [lo, hi) and heap ops [hlo, hhi) to st.  With track (the
  // loading pass), also notes what each op replaced, for undoCall.
  let prevOp, prevLo, prevHi;
  function applyRange(st, lo, hi, hlo, hhi, track) {
    const sorted = st.sorted;
    for (let k = hlo; k < hhi; k++) {
      const h = HOP.heap[k];
      if (track) { prevLo[k] = st.ext[h] ? st.ext[h][0] : 0; prevHi[k] = st.ext[h] ? st.ext[h][1] : 0; }
      setExt(st, h, HOP.hi[k] ? [HOP.lo[k], HOP.hi[k]] : null);
    }
    for (let k = lo; k < hi; k++) {
      const h = OP.heap[k], a = OP.addr[k];
      const old = st.maps[h].get(a);
      st.ver[h] = ++VER;
      if (track) prevOp[k] = old === undefined ? -1 : old;
      if (old !== undefined) dropChunk(st, h, a, old);
      if (OP.state[k] !== 0) {
        putChunk(st, h, a, k);
        if (old === undefined && sorted) sorted[h].splice(lowerBound(sorted[h], a), 0, a);
        if (track) noteScale(st, h, k);
      } else if (old !== undefined && sorted) {
        sorted[h].splice(lowerBound(sorted[h], a), 1);
      }
    }
  }

  function noteScale(st, h, k) {
    if (OP.state[k] !== 7 && OP.size[k] > (maxChunk[h] || 0)) maxChunk[h] = OP.size[k];
  }

  function applyCall(st, i, track) {
    applyRange(st, OP.start[i], OP.start[i + 1], HOP.start[i], HOP.start[i + 1], track);
  }

  // Takes call i back (the state must be right after it): each op's
  // replaced chunk put back, last op first.
  function undoCall(st, i) {
    const sorted = st.sorted;
    for (let k = OP.start[i + 1] - 1; k >= OP.start[i]; k--) {
      const h = OP.heap[k], a = OP.addr[k], before = prevOp[k], put = OP.state[k] !== 0;
      st.ver[h] = ++VER;
      if (put) dropChunk(st, h, a, k);
      if (before >= 0) {
        putChunk(st, h, a, before);
        if (!put && sorted) sorted[h].splice(lowerBound(sorted[h], a), 0, a);
      } else if (put && sorted) {
        sorted[h].splice(lowerBound(sorted[h], a), 1);
      }
    }
    for (let k = HOP.start[i + 1] - 1; k >= HOP.start[i]; k--) {
      setExt(st, HOP.heap[k], prevHi[k] ? [prevLo[k], prevHi[k]] : null);
    }
  }

  function snapshot(st, pos) {
    const maps = st.maps.map((m) => {
      const a = new Float64Array(m.size), o = new Int32Array(m.size);
      let j = 0;
      for (const addr of m.keys()) a[j++] = addr;
      a.sort();
      for (j = 0; j < a.length; j++) o[j] = m.get(a[j]);
      return [a, o];
    });
    return { pos, maps, ext: st.ext.map((e) => (e ? e.slice() : null)) };
  }

  function restore(kf) {
    const st = emptyState();
    st.sorted = [];
    kf.ext.forEach((e, h) => setExt(st, h, e ? e.slice() : null));
    kf.maps.forEach(([a, o], h) => {
      for (let j = 0; j < a.length; j++) putChunk(st, h, a[j], o[j]);
      st.sorted.push(Array.from(a));
    });
    return st;
  }

  // One pass over every call: keyframes, the series of the timeline, the
  // largest non-top bytes of each heap (its scale).
  function buildIndex() {
    prevOp = new Int32Array(OP.addr.length);
    prevLo = new Float64Array(HOP.heap.length);
    prevHi = new Float64Array(HOP.heap.length);
    const st = emptyState();
    applyRange(st, 0, OP.start[0], 0, HOP.start[0], true);
    keyframes.push(snapshot(st, -1));
    inuseSeries = new Float64Array(N);
    totalSeries = new Float64Array(N);
    const sums = D.heaps.map(() => 0);
    maxNonTop = D.heaps.map(() => 0);
    for (let k = 0; k < OP.start[0]; k++) sumOp(sums, st, k);
    let since = 0;
    for (let i = 0; i < N; i++) {
      const lo = OP.start[i], hi = OP.start[i + 1];
      for (let k = lo; k < hi; k++) sumOp(sums, st, k);
      applyCall(st, i, true);
      for (let k = lo; k < hi; k++) {
        const h = OP.heap[k];
        if (sums[h] > maxNonTop[h]) maxNonTop[h] = sums[h];
      }
      inuseSeries[i] = st.inuse;
      totalSeries[i] = Math.max(st.total, st.inuse);
      since += hi - lo + 1;
      if (since >= Math.max(KF_MIN_OPS, st.live) && i < N - 1) {
        keyframes.push(snapshot(st, i));
        since = 0;
      }
    }
  }
  // (before op k is applied) the change op k makes to its heap's non-top bytes
  function sumOp(sums, st, k) {
    const h = OP.heap[k], old = st.maps[h].get(OP.addr[k]);
    if (old !== undefined && OP.state[old] !== 7) sums[h] -= OP.size[old];
    if (OP.state[k] !== 0 && OP.state[k] !== 7) sums[h] += OP.size[k];
  }

  let pending = false;
  function gotoLater(p) {   // keys, the slider, drags: draw once a frame
    move(p);
    if (pending) return;
    pending = true;
    const flush = () => { if (pending) { pending = false; render(); } };
    requestAnimationFrame(flush);
    setTimeout(flush, 100);
  }
  function gotoIndex(p) {
    move(p);
    pending = false;
    render();
  }
  function move(p) {
    p = Math.max(0, Math.min(N - 1, p | 0));
    if (N === 0) return;
    if (p !== cur) {
      if (state && Math.abs(p - cur) <= NEAR) {   // near: forward, or undo back
        for (let i = cur + 1; i <= p; i++) applyCall(state, i, false);
        for (let i = cur; i > p; i--) undoCall(state, i);
      } else {
        let lo = 0, hi = keyframes.length - 1;
        while (lo < hi) {   // the last keyframe at or before p
          const mid = (lo + hi + 1) >> 1;
          if (keyframes[mid].pos <= p) lo = mid; else hi = mid - 1;
        }
        const kf = keyframes[lo];
        if (!(state && cur >= kf.pos && cur < p)) {
          state = restore(kf);
          cur = kf.pos;
        }
        for (let i = cur + 1; i <= p; i++) applyCall(state, i, false);
      }
      cur = p;
    }
  }

  function indexOfSeq(seq) {
    let lo = 0, hi = N - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (C.seq[mid] <= seq) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

  // ------------------------------------------------------------- words

  const ALLOCATING = new Set([1, 3, 4, 5, 6, 7, 8, 9, 12]);
  const FREEING = new Set([2, 4, 12]);

  function ptr(v) { return v ? hex(v) : 'NULL'; }

  function callText(i) {
    const k = C.kind[i];
    const a0 = arg(i, 0), a1 = arg(i, 1), a2 = arg(i, 2);
    if (D.unfinished[i]) return 'unfinished call';
    const name = D.tables.calls[k] || 'call ' + k;
    let s;
    if (k === 1 || k === 8 || k === 9) s = `${name}(${num(a0)})`;
    else if (k === 2) s = `free(${ptr(a0)})`;
    else if (k === 3) s = `calloc(${num(a0)}, ${num(a1)})`;
    else if (k === 4 || k === 12) s = `${name}(${ptr(a0)}, ${num(a1)})`;
    else if (k === 5 || k === 6 || k === 7) s = `${name}(${num(a0)}, ${num(a1)})`;
    else if (k === 10) return `mallopt(${signed(a0)}, ${signed(a1)}) = ${signed(a2)}`;
    else if (k === 11) return `malloc_trim(${num(a0)}) = ${signed(a2)}`;
    else if (k === 13) return 'thread exit';
    else s = name;
    if (ALLOCATING.has(k)) s += ' = ' + ptr(a2);
    return s;
  }

  function pathWords(i) {
    const out = [];
    if (C.how[i]) out.push('served ' + (D.tables.how[C.how[i]] || 'how ' + C.how[i]));
    const bits = C.bits[i];
    D.tables.bits.forEach((w, b) => { if (b !== 14 && (bits >>> b) & 1) out.push(w); });
    if ((bits >>> 14) & 1) out.push('the call failed' + (C.err[i] ? ' (errno ' + C.err[i] + ')' : ''));
    return out;
  }

  function threadLabel(ti) { return 'T' + (ti + 1); }

  function arenaLabel(ai) {
    if (ai < 0) return '';
    const a = D.arenas[ai];
    return `arena ${a.number}${a.main ? ' (main)' : ''} ${hex(a.addr)}`;
  }

  // ------------------------------------------------------------ drawing

  function render() {
    document.body.dataset.seq = C.seq[cur];
    document.body.dataset.index = cur;
    $('position').textContent = `call #${C.seq[cur]} (${cur + 1} of ${N})`;
    $('slider').value = cur;
    renderCall();
    renderHeaps();
    renderBins();
    renderEvents(false);
    renderCursor();
    try {
      if (location.hash !== '#seq=' + C.seq[cur]) history.replaceState(null, '', '#seq=' + C.seq[cur]);
    } catch (e) { /* some browsers refuse it on file: pages */ }
  }

  function renderCall() {
    const i = cur, k = C.kind[i], ti = C.tid[i];
    const parts = [];
    parts.push(`<div class="meta">call #${C.seq[i]} · <span class="tc${ti % 8}">thread ${threadLabel(ti)}</span> (tid ${threads[ti]})` +
      (C.arena[i] >= 0 ? ' · ' + esc(arenaLabel(C.arena[i])) : '') + '</div>');
    let what = esc(callText(i));
    const a2 = arg(i, 2), a3 = C.a3[i];
    if (ALLOCATING.has(k) && a2 && a3) what += ` <span class="meta">chunk ${hex(a2 - 16)}, ${a3} bytes</span>`;
    else if (k === 2 && a3) what += ` <span class="meta">chunk ${hex(arg(i, 0) - 16)}, ${a3} bytes</span>`;
    parts.push(`<div class="what">${what}</div>`);
    const path = pathWords(i);
    if (D.unfinished[i]) path.push('unfinished: these records have no call record after them (a call cut short when the recording ended, or records written at exit); they are applied as they are');
    parts.push(`<div class="path">${path.length ? esc(path.join('; ')) : '<span class="meta">no change to any bin</span>'}</div>`);
    const ch = [];
    for (let k2 = OP.start[i]; k2 < OP.start[i + 1] && ch.length < 40; k2++) {
      const s = OP.state[k2];
      if (s === 0) ch.push(`${hex(OP.addr[k2])}: merged away / replaced`);
      else ch.push(`${hex(OP.addr[k2])}, ${OP.size[k2]} bytes: ${LABEL[WORD[s]] || WORD[s]}` +
        (s === 2 && OP.owner[k2] >= 0 ? ' of ' + threadLabel(OP.owner[k2]) : ''));
    }
    const nops = OP.start[i + 1] - OP.start[i];
    if (nops > ch.length) ch.push(`… ${nops - ch.length} more`);
    for (let h = HOP.start[i]; h < HOP.start[i + 1]; h++) {
      ch.push(HOP.hi[h] ? `heap ${hex(HOP.lo[h])}-${hex(HOP.hi[h])}` : `heap ${hex(HOP.lo[h])} gone`);
    }
    if (ch.length) parts.push('<ul>' + ch.map((s) => `<li>${esc(s)}</li>`).join('') + '</ul>');
    const sys = [];
    for (let s = SYS.start[i]; s < SYS.start[i + 1]; s++) sys.push(SYS.text[s]);
    if (sys.length) parts.push('<div class="meta">system calls:</div><ul class="sys">' + sys.map((s) => `<li>${esc(s)}</li>`).join('') + '</ul>');
    $('call').innerHTML = parts.join('');
  }

  function currentChunks() {
    const set = new Set();
    for (let k = OP.start[cur]; k < OP.start[cur + 1]; k++) if (OP.state[k]) set.add(OP.heap[k] + ':' + OP.addr[k]);
    return set;
  }

  let heapWidth = 0;   // read once, and again after a resize
  function rowWidth() {
    if (!heapWidth) heapWidth = $('heaps').clientWidth;
    return Math.max(240, Math.min(heapWidth - LABEL_W - 8, 1400));
  }

  // One element per heap, in a fixed order (by the dump's arena numbers),
  // redrawn only when its heap, the current call's chunks in it, the
  // searched address or the width changed.
  let heapEls = null;
  function renderHeaps() {
    const width = rowWidth();
    const focus = currentChunks();
    if (!heapEls) {
      const order = D.heaps.map((h, i) => i).sort((x, y) => {
        const ax = D.heaps[x].arena, ay = D.heaps[y].arena;
        const nx = ax < 0 ? 1e9 : D.arenas[ax].number, ny = ay < 0 ? 1e9 : D.arenas[ay].number;
        return nx - ny || x - y;
      });
      heapEls = [];
      const box = $('heaps');
      box.innerHTML = '<div class="empty" id="no-heap">no heap yet</div>';
      for (const h of order) {
        const el = document.createElement('div');
        box.appendChild(el);
        heapEls[h] = { el, key: null };
      }
      heapEls.order = order;
    }
    const counts = {};
    state.count.forEach((n, s) => { counts[WORD[s]] = n; });
    let lastArena = null, shown = 0;
    for (const h of heapEls.order) {
      const meta = D.heaps[h], m = state.maps[h], ext = state.ext[h];
      const box = heapEls[h];
      if (!m.size && !ext) {
        if (box.key !== 'hidden') { box.el.innerHTML = ''; box.el.style.display = 'none'; box.key = 'hidden'; }
        continue;
      }
      shown++;
      const heading = meta.arena !== lastArena;
      lastArena = meta.arena;
      const mine = [];
      for (const f of focus) if (f.startsWith(h + ':')) mine.push(f);
      const key = `${state.ver[h]}|${width}|${mine.join(',')}|${hitAddr}|${heading}`;
      if (key === box.key) continue;
      box.key = key;
      box.el.style.display = '';
      let head = '';
      if (heading) {
        if (meta.arena >= 0) head = `<h2>${esc(arenaLabel(meta.arena))}</h2>`;
        else if (meta.kind === 'mmap') head = "<h2>mmap'd chunks (each in a mapping of its own)</h2>";
        else head = '<h2>chunks outside every heap the recording announced</h2>';
      }
      if (!state.sorted) state.sorted = state.maps.map((mm) => Array.from(mm.keys()).sort((x, y) => x - y));
      box.el.innerHTML = head + drawHeap(h, meta, m, state.sorted[h], ext, width, focus);
    }
    $('no-heap').style.display = shown ? 'none' : '';
    const leg = STATES.concat(EXTRA_STATES).filter(([w]) => w !== 'mmapped' || counts.mmapped)
      .filter(([w]) => w !== 'largecache' || counts.largecache)
      .map(([w, l, c]) => `<span><i style="background:${c}"></i>${esc(l)} (${counts[w] || 0})</span>`);
    leg.push('<span><i style="background:#7F7F7F"></i>heap_info, malloc_state (not chunks)</span>');
    $('legend').innerHTML = leg.join('');
  }

  function drawHeap(h, meta, m, addrs, ext, width, focus) {
    const mmap = meta.kind === 'mmap';
    let lo = 0, hi = addrs.length, note = '';
    if (addrs.length > MAX_DRAWN) {
      let at = -1, around = 'the first ones';
      for (const f of focus) {
        const [fh, fa] = f.split(':').map(Number);
        if (fh === h) { at = lowerBound(addrs, fa); around = "around the current call's chunk"; break; }
      }
      if (at < 0 && hitAddr !== null) {
        at = Math.max(0, lowerBound(addrs, hitAddr) - 1);
        around = 'around the address searched';
      }
      if (at < 0) at = 0;
      lo = Math.max(0, Math.min(at - (MAX_DRAWN >> 1), addrs.length - MAX_DRAWN));
      hi = lo + MAX_DRAWN;
      note = ` — chunks ${lo + 1}–${hi} of ${addrs.length} drawn, ${around}`;
    }
    let bpp;
    if (mmap) {
      let big = 1;
      for (const a of addrs) big = Math.max(big, OP.size[m.get(a)]);
      bpp = Math.max(8, big / (width / 2));
    } else if (note) {        // a window: its chunks in about six rows
      let sum = 0, big = 0;
      for (let j = lo; j < hi; j++) {
        const k = m.get(addrs[j]);
        if (OP.state[k] !== 7) { sum += OP.size[k]; big = Math.max(big, OP.size[k]); }
      }
      bpp = Math.max(8, sum / (6 * width), big / width);
    } else {                  // the heap's non-top chunks at their largest: about two rows
      bpp = Math.max(8, maxNonTop[h] / (2 * width), (maxChunk[h] || 0) / width);
    }
    const start = ext ? ext[0] : (addrs.length ? addrs[0] : 0);
    const end = ext ? ext[1] : 0;
    let inuse = 0, free = 0, nchunks = addrs.length;
    for (const a of addrs) {
      const k = m.get(a), s = OP.state[k];
      if (INUSE_LIKE.has(s)) inuse += OP.size[k]; else if (s !== 7) free += OP.size[k];
    }
    const title = mmap ? `${nchunks} mapping(s), ${human(inuse)}`
      : `${meta.kind === 'implied' ? 'region' : 'heap'} ${hex(start)}–${hex(end || start)} (${human(Math.max(0, end - start))}): ${nchunks} chunks, ${human(inuse)} in use, ${human(free)} free in bins and tcaches`;
    const parts = [`<div class="heap" data-heap="${h}"><div class="hh">${esc(title)}<span class="note">; 1 px = ${Math.round(bpp)} bytes${esc(note)}</span></div>`];
    const items = [];
    let pos = mmap ? null : (lo === 0 ? start : addrs[lo]);
    for (let j = lo; j < hi; j++) {
      const a = addrs[j], k = m.get(a), size = OP.size[k];
      if (pos !== null && a > pos) {
        items.push([pos, a - pos, j === 0 && pos === start && meta.kind === 'heap' ? 'header' : 'unknown', -1]);
      }
      items.push([a, size, 'chunk', k]);
      if (pos !== null) pos = Math.max(pos, a + size);
    }
    const cells = [];
    let row = 0, x = 0;
    const rowStarts = [];
    for (const [a, size, what, k] of items) {
      const s = k >= 0 ? OP.state[k] : -1;
      let w = Math.max(MIN_W, size / bpp);
      const cap = s === 7 ? width / 2 : width;
      const cut = w > cap;
      if (cut) w = cap;
      if (mmap && x > 0) x += 4;
      if (x > 0 && x + w > width) { row++; x = 0; }
      if (x === 0) rowStarts.push([row, a]);
      const style = `left:${(LABEL_W + x).toFixed(1)}px;top:${row * 24}px;width:${w.toFixed(1)}px`;
      if (k < 0) {
        cells.push(`<div class="gap ${what}" style="${style}" title="${what === 'header' ? 'heap_info / malloc_state' : 'not seen in the recording'}: ${hex(a)}, ${size} bytes">${w > 70 ? (what === 'header' ? 'header' : '?') : ''}</div>`);
      } else {
        const word = WORD[s];
        const drawnState = word === 'mmapped' ? 'inuse' : word;
        const owner = OP.owner[k];
        const isCur = focus.has(h + ':' + a);
        const isHit = hitAddr !== null && hitAddr >= a && hitAddr < a + size;
        const label = w > 46 ? (cut ? '// ' : '') + (size >= 10000 ? human(size) : size) : '';
        cells.push(`<div class="ck s-${word}${isCur ? ' cur' : ''}${isHit ? ' hit' : ''}${cut ? ' cut' : ''}" data-addr="${hex(a)}" data-size="${size}" data-state="${drawnState}"` +
          `${word === 'mmapped' ? ' data-mmapped="1"' : ''}${owner >= 0 ? ` data-thread="${threads[owner]}"` : ''} data-op="${k}" style="${style}">${label}</div>`);
      }
      x += w;
    }
    for (const [r, a] of rowStarts) cells.push(`<div class="rowlabel" style="top:${r * 24}px">${hex(a)}</div>`);
    parts.push(`<div class="band" style="height:${(row + 1) * 24}px">${cells.join('')}</div></div>`);
    return parts.join('');
  }

  function lowerBound(arr, v) {
    let lo = 0, hi = arr.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (arr[mid] < v) lo = mid + 1; else hi = mid; }
    return lo;
  }

  function binName(size, s) {
    if (s === 3) return ['fastbin ' + ((size >> 4) - 2), 0, (size >> 4) - 2];
    if (s === 4) return ['unsorted bin', 1, 0];
    if (s === 5) return ['small bin ' + (size >> 4), 2, size >> 4];
    const li = largeIndex(size);
    return ['large bin ' + li, 3, li];
  }
  function largeIndex(size) {
    if (size / 64 <= 48) return 48 + Math.floor(size / 64);
    if (size / 512 <= 20) return 91 + Math.floor(size / 512);
    if (size / 4096 <= 10) return 110 + Math.floor(size / 4096);
    if (size / 32768 <= 4) return 119 + Math.floor(size / 32768);
    if (size / 262144 <= 2) return 124 + Math.floor(size / 262144);
    return 126;
  }

  function chip(a, k, word) {
    return `<span class="chip s-${word}" data-chunk="${hex(a)}" title="${hex(a)}, ${OP.size[k]} bytes">${hex(a).slice(-6)}</span>`;
  }

  function renderBins() {
    const perArena = new Map(), tc = new Map();
    D.heaps.forEach((meta, h) => {
      if (meta.kind === 'mmap') return;
      for (const [a, k] of state.free[h]) {
        const s = OP.state[k];
        if (s === 2) {
          const o = OP.owner[k];
          if (!tc.has(o)) tc.set(o, new Map());
          const b = (OP.size[k] - 17) >> 4;
          const bins = tc.get(o);
          if (!bins.has(b)) bins.set(b, []);
          bins.get(b).push([a, k]);
        } else if (s >= 3 && s <= 6) {
          const ar = meta.arena;
          if (!perArena.has(ar)) perArena.set(ar, new Map());
          const [name, rank, idx] = binName(OP.size[k], s);
          const bins = perArena.get(ar);
          if (!bins.has(name)) bins.set(name, { rank, idx, s, chunks: [] });
          bins.get(name).chunks.push([a, k]);
        }
      }
    });
    const out = ['<h2>Bins</h2>'];
    const arenas = D.arenas.map((a, i) => i).sort((x, y) => D.arenas[x].number - D.arenas[y].number);
    let any = false;
    for (const ai of arenas) {
      const bins = perArena.get(ai);
      if (!bins) continue;
      any = true;
      out.push(`<div class="arena" data-arena="${D.arenas[ai].number}"><h3>${esc(arenaLabel(ai))}</h3>`);
      const list = Array.from(bins.entries()).sort((x, y) => x[1].rank - y[1].rank || x[1].idx - y[1].idx);
      for (const [name, b] of list) {
        b.chunks.sort((x, y) => x[0] - y[0]);
        const word = WORD[b.s];
        const shown = b.chunks.slice(0, 12).map(([a, k]) => chip(a, k, word)).join('');
        const sizes = b.s === 4 || b.s === 6 ? '' : ` (${OP.size[b.chunks[0][1]]} bytes)`;
        out.push(`<div class="bin" data-bin="${esc(name)}"><span class="bn">${esc(name)}</span>${sizes} <span class="cnt">×${b.chunks.length}</span> ${shown}${b.chunks.length > 12 ? ' …' : ''}</div>`);
      }
      out.push('</div>');
    }
    if (!any) out.push('<div class="empty">every bin is empty</div>');
    out.push('<h2>Tcaches</h2>');
    for (let ti = 0; ti < threads.length; ti++) {
      if (firstIndexOfThread[ti] > cur) continue;
      const bins = tc.get(ti);
      const gone = exitIndexOfThread[ti] <= cur ? ', exited' : '';
      out.push(`<div class="tcache" data-tcache-thread="${threads[ti]}"><h3 class="tc${ti % 8}">${threadLabel(ti)} (tid ${threads[ti]}${gone})</h3>`);
      if (!bins) { out.push('<div class="empty">empty</div></div>'); continue; }
      for (const b of Array.from(bins.keys()).sort((x, y) => x - y)) {
        const cs = bins.get(b);
        out.push(`<div class="bin" data-tcache-bin="${b}"><span class="bn">bin ${b}</span> (${32 + 16 * b} bytes) <span class="cnt">×${cs.length}</span> ${cs.map(([a, k]) => chip(a, k, 'tcache')).join('')}</div>`);
      }
      out.push('</div>');
    }
    $('bins').innerHTML = out.join('');
  }

  let firstIndexOfThread = null, exitIndexOfThread = null;

  function eventRow(i) {
    const ti = C.tid[i];
    const hasSys = SYS.start[i + 1] > SYS.start[i];
    const how = C.how[i] ? ` <span class="how">[${esc(shortHow(C.how[i]))}]</span>` : '';
    const failed = (C.bits[i] >>> 14) & 1;
    return `<div class="ev t${ti % 8}${i === cur ? ' cur' : ''}${failed ? ' failed' : ''}" data-event="${C.seq[i]}" data-index="${i}" style="top:${i * ROW_H}px">` +
      `<span class="seq">${C.seq[i]}</span><span class="thr tc${ti % 8}">${threadLabel(ti)}</span>` +
      `<span class="name">${esc(callText(i))}</span>${how}${hasSys ? ' <span class="sysmark" title="system call">⚑</span>' : ''}</div>`;
  }
  function shortHow(h) {
    return ({ 1: 'tcache', 2: 'fastbin', 3: 'small', 4: 'unsorted', 5: 'remainder', 6: 'large', 7: 'binmap', 8: 'top', 9: 'mmap', 10: 'mremap', 11: 'in place', 12: 'moved', 13: 'large cache', 14: 'mmap cache' })[h] || String(h);
  }

  function renderEvents(force) {
    const box = $('events');
    if (N <= FULL_LIST) {
      if (listWindow[0] !== 0 || force) {
        const rows = [];
        for (let i = 0; i < N; i++) rows.push(eventRow(i));
        $('events-inner').innerHTML = rows.join('');
        listWindow = [0, N];
      }
      markCurrentRow();
      scrollToCurrent(box);
      return;
    }
    if (!scrollToCurrent(box) || force) drawWindow(force);
    markCurrentRow();
  }
  // keeps the current row visible; true if that redrew the window.  The
  // list's scroll position and height are remembered (from its scroll
  // events and the window's size) rather than read: a read would make the
  // browser lay out the heaps just drawn at once, a second time.
  let listTop = 0, listHeight = 0;
  function scrollToCurrent(box) {
    if (!listHeight) listHeight = box.clientHeight || 400;
    const y = cur * ROW_H;
    if (y < listTop || y + ROW_H > listTop + listHeight) {
      listTop = Math.max(0, Math.min(N * ROW_H - listHeight, y - listHeight / 2));
      box.scrollTop = listTop;
      if (N > FULL_LIST) { drawWindow(false); return true; }
    }
    return false;
  }
  function drawWindow(force) {
    const first = Math.floor(listTop / ROW_H);
    const lo = Math.max(0, first - ROW_PAD);
    const hi = Math.min(N, first + Math.ceil(listHeight / ROW_H) + ROW_PAD);
    if (!force && lo === listWindow[0] && hi === listWindow[1]) return;
    const rows = [];
    for (let i = lo; i < hi; i++) rows.push(eventRow(i));
    if (cur >= 0 && (cur < lo || cur >= hi)) rows.push(eventRow(cur));
    $('events-inner').innerHTML = rows.join('');
    listWindow = [lo, hi];
  }
  function markCurrentRow() {
    const inner = $('events-inner');
    const old = inner.querySelector('.ev.cur');
    if (old && +old.dataset.index !== cur) old.classList.remove('cur');
    let row = inner.querySelector(`.ev[data-index="${cur}"]`);
    if (!row && cur >= 0) {   // the current call is outside the window: it is always drawn
      inner.insertAdjacentHTML('beforeend', eventRow(cur));
      row = inner.querySelector(`.ev[data-index="${cur}"]`);
    }
    if (row) row.classList.add('cur');
  }

  // ---------------------------------------------------------- timeline

  function drawTimeline() {
    const box = $('timeline'), cv = $('chart');
    const w = box.clientWidth, h = box.clientHeight;
    timelineWidth = w;
    const dpr = window.devicePixelRatio || 1;
    cv.width = Math.max(1, Math.round(w * dpr));
    cv.height = Math.max(1, Math.round(h * dpr));
    const g = cv.getContext('2d');
    g.scale(dpr, dpr);
    g.clearRect(0, 0, w, h);
    let peak = 1;
    for (let i = 0; i < N; i++) if (totalSeries[i] > peak) peak = totalSeries[i];
    const top = 12, ph = h - top - 2;
    const cols = Math.max(1, Math.floor(w));
    const tmax = new Float64Array(cols), umax = new Float64Array(cols);
    if (N >= cols) {          // each column: the largest of its calls
      for (let i = 0; i < N; i++) {
        const c = Math.min(cols - 1, Math.floor(i * cols / N));
        if (totalSeries[i] > tmax[c]) tmax[c] = totalSeries[i];
        if (inuseSeries[i] > umax[c]) umax[c] = inuseSeries[i];
      }
    } else {                  // each column: the call it falls in
      for (let c = 0; c < cols; c++) {
        const i = Math.min(N - 1, Math.floor(c * N / cols));
        tmax[c] = totalSeries[i];
        umax[c] = inuseSeries[i];
      }
    }
    g.fillStyle = '#e3e3e3';
    for (let c = 0; c < cols; c++) { const y = ph * tmax[c] / peak; g.fillRect(c, top + ph - y, 1, y); }
    g.fillStyle = '#4C78A8';
    for (let c = 0; c < cols; c++) { const y = ph * umax[c] / peak; g.fillRect(c, top + ph - y, 1, y); }
    g.fillStyle = '#666';
    g.font = '10px DejaVu Sans, Arial, sans-serif';
    g.fillText('peak ' + human(peak), w - 110, top + 10);
    // system calls and thread exits, one mark per pixel column at most
    const marks = [], seen = new Set();
    for (let i = 0; i < N; i++) {
      const sys = SYS.start[i + 1] > SYS.start[i], exit = C.kind[i] === 13;
      if (!sys && !exit) continue;
      const x = Math.floor(i * w / N);
      if (seen.has(x)) continue;
      seen.add(x);
      const text = sys ? SYS.text[SYS.start[i]] : 'thread exit';
      marks.push(`<div class="mark${sys ? '' : ' exit'}" data-syscall-event="${C.seq[i]}" style="left:${x}px" title="#${C.seq[i]}: ${esc(text)}"></div>`);
    }
    $('marks').innerHTML = marks.join('');
    renderCursor();
  }

  let timelineWidth = 0;
  function renderCursor() {
    const w = timelineWidth;
    $('cursor').style.left = (N ? Math.floor((cur + 0.5) * w / N) : 0) + 'px';
  }

  function timelineEvents() {
    const box = $('timeline');
    let down = false;
    const at = (e) => {
      const r = box.getBoundingClientRect();
      gotoLater(Math.floor((e.clientX - r.left) / r.width * N));
    };
    box.addEventListener('mousedown', (e) => { down = true; at(e); });
    window.addEventListener('mousemove', (e) => { if (down) at(e); });
    window.addEventListener('mouseup', () => { down = false; });
  }

  // ------------------------------------------------------------- search

  function parseAddr(s) {
    s = s.trim().toLowerCase();
    if (!s) return null;
    const v = s.startsWith('0x') ? parseInt(s.slice(2), 16) : (/^[0-9a-f]+$/.test(s) && /[a-f]/.test(s) ? parseInt(s, 16) : parseInt(s, 10));
    return Number.isFinite(v) ? v : null;
  }

  // The calls that returned, freed or reused a chunk holding addr, and the
  // chunk records that changed one (merges, splits, bins).
  function search(addr) {
    const hits = [];
    let freed = false;
    const seen = new Set();
    for (let i = 0; i < N && hits.length < MAX_HITS; i++) {
      const k = C.kind[i];
      const a0 = C.a0[i], a2 = C.a2[i];
      if (FREEING.has(k) && C.fsz[i] && typeof a0 === 'number' && a0 && addr >= a0 - 16 && addr < a0 - 16 + C.fsz[i]) {
        hits.push(['freed', i, a0 - 16, C.fsz[i]]);
        freed = true;
        seen.add(i);
      }
      if (ALLOCATING.has(k) && a2 && C.a3[i] && !((C.bits[i] >>> 14) & 1) && addr >= a2 - 16 && addr < a2 - 16 + C.a3[i]) {
        hits.push([freed ? 'reused' : 'allocated', i, a2 - 16, C.a3[i]]);
        seen.add(i);
      }
    }
    // chunk records: the state changes of a chunk holding addr by other calls
    let i = 0, lastWord = null;
    const more = [];
    for (let k = OP.start[0]; k < OP.addr.length && more.length < MAX_HITS; k++) {
      if (!OP.state[k] || OP.heap[k] < 0) continue;
      if (addr >= OP.addr[k] && addr < OP.addr[k] + OP.size[k]) {
        while (OP.start[i + 1] <= k) i++;
        // a state change by another call, once per run of the same state
        // (top shrinking call after call is one entry)
        const word = WORD[OP.state[k]];
        if (!seen.has(i) && word !== lastWord) more.push(['changed', i, OP.addr[k], OP.size[k], word]);
        lastWord = seen.has(i) ? null : word;
      }
    }
    return hits.concat(more).sort((x, y) => x[1] - y[1]);
  }

  function runSearch() {
    const text = $('search').value;
    const addr = parseAddr(text);
    const box = $('results');
    if (addr === null) { hitAddr = null; box.innerHTML = ''; render(); return []; }
    hitAddr = addr;
    const hits = search(addr);
    const rows = [`<h2>${esc(hex(addr))}: ${hits.length ? hits.length + ' call(s)' : 'never in a chunk'}</h2>`];
    for (const [kind, i, a, size, word] of hits.slice(0, 500)) {
      const ti = C.tid[i];
      const what = kind === 'changed' ? `→ ${LABEL[word] || word}` : '';
      rows.push(`<div class="hit-row ${kind} t${ti % 8}" data-hit-event="${C.seq[i]}" data-hit-kind="${kind}" data-thread="${threads[ti]}">` +
        `<span class="k">${kind}</span> #${C.seq[i]} ${threadLabel(ti)} (tid ${threads[ti]}) ${esc(callText(i))} · chunk ${hex(a)} ${size} bytes ${esc(what)}</div>`);
    }
    if (hits.length > 500) rows.push(`<div class="empty">… ${hits.length - 500} more</div>`);
    box.innerHTML = rows.join('');
    render();
    return hits.map(([kind, i]) => [kind, C.seq[i], threads[C.tid[i]]]);
  }

  // -------------------------------------------------------------- setup

  function step(d) { gotoIndex(cur + d); }
  function nextWith(pred, d) {
    for (let i = cur + d; i >= 0 && i < N; i += d) if (pred(i)) { gotoIndex(i); return; }
  }

  function keys(e) {
    if (e.target && (e.target.tagName === 'INPUT' && e.target.type === 'text')) {
      if (e.key === 'Escape') e.target.blur();
      return;
    }
    const big = e.shiftKey ? 10 : 1;
    let done = true;
    switch (e.key) {
      case 'ArrowRight': case 'ArrowDown': case 'j': gotoLater(cur + big); break;
      case 'ArrowLeft': case 'ArrowUp': case 'k': gotoLater(cur - big); break;
      case 'PageDown': gotoLater(cur + 100); break;
      case 'PageUp': gotoLater(cur - 100); break;
      case 'Home': gotoIndex(0); break;
      case 'End': gotoIndex(N - 1); break;
      case ']': nextWith((i) => SYS.start[i + 1] > SYS.start[i], 1); break;
      case '[': nextWith((i) => SYS.start[i + 1] > SYS.start[i], -1); break;
      case 't': nextWith((i) => C.tid[i] === C.tid[cur], 1); break;
      case 'T': nextWith((i) => C.tid[i] === C.tid[cur], -1); break;
      case '/': $('search').focus(); break;
      case 'g': $('goto').focus(); break;
      case '?': $('help').hidden = !$('help').hidden; break;
      case 'Escape': $('help').hidden = true; break;
      default: done = false;
    }
    if (done) e.preventDefault();
  }

  function wire() {
    document.addEventListener('keydown', keys);
    $('b-first').onclick = () => gotoIndex(0);
    $('b-back10').onclick = () => step(-10);
    $('b-back').onclick = () => step(-1);
    $('b-next').onclick = () => step(1);
    $('b-next10').onclick = () => step(10);
    $('b-last').onclick = () => gotoIndex(N - 1);
    $('b-help').onclick = () => { $('help').hidden = !$('help').hidden; };
    $('slider').max = Math.max(0, N - 1);
    $('slider').addEventListener('input', (e) => gotoLater(+e.target.value));
    $('goto').addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { const v = parseInt($('goto').value, 10); if (Number.isFinite(v)) gotoIndex(indexOfSeq(v)); }
    });
    $('search').addEventListener('keydown', (e) => { if (e.key === 'Enter') runSearch(); });
    $('search').addEventListener('change', runSearch);
    $('events-inner').style.height = (N * ROW_H) + 'px';
    $('events').addEventListener('scroll', () => {
      listTop = $('events').scrollTop;
      if (N > FULL_LIST) { drawWindow(false); markCurrentRow(); }
    });
    $('events').addEventListener('click', (e) => {
      const row = e.target.closest('.ev');
      if (row) gotoIndex(+row.dataset.index);
    });
    $('results').addEventListener('click', (e) => {
      const row = e.target.closest('.hit-row');
      if (row) gotoIndex(indexOfSeq(+row.dataset.hitEvent));
    });
    const pick = (e) => {
      const el = e.target.closest('[data-addr],[data-chunk]');
      if (el) { $('search').value = el.dataset.addr || el.dataset.chunk; runSearch(); }
    };
    $('heaps').addEventListener('click', pick);
    $('heaps').addEventListener('mouseover', (e) => {
      const el = e.target.closest('.ck');
      if (!el || el.title) return;
      const k = +el.dataset.op, word = WORD[OP.state[k]], owner = OP.owner[k];
      el.title = `${el.dataset.addr}: ${OP.size[k]} bytes, ${LABEL[word] || word}` +
        (owner >= 0 ? `, last changed by ${threadLabel(owner)} (tid ${threads[owner]})` : '');
    });
    $('bins').addEventListener('click', pick);
    timelineEvents();
    let t = null;
    window.addEventListener('resize', () => {
      clearTimeout(t);
      t = setTimeout(() => { listHeight = $('events').clientHeight; heapWidth = 0; drawTimeline(); render(); }, 150);
    });
  }

  async function main() {
    try {
      D = await loadData();
      C = D.calls; OP = D.ops; HOP = D.hops; SYS = D.sys;
      N = C.seq.length;
      threads = D.threads;
      tidIndex = new Map(threads.map((t, i) => [t, i]));
      D.unfinished = {};
      for (const i of C.unfinished || []) D.unfinished[i] = true;
      firstIndexOfThread = threads.map(() => Infinity);
      exitIndexOfThread = threads.map(() => Infinity);
      for (let i = N - 1; i >= 0; i--) {
        firstIndexOfThread[C.tid[i]] = i;
        if (C.kind[i] === 13) exitIndexOfThread[C.tid[i]] = i;
      }
      $('events').dataset.eventCount = N;
      $('events').setAttribute('data-event-count', N);
      $('events-head').textContent = `${N} calls` + (N > FULL_LIST ? ` (a window of rows is drawn: over ${FULL_LIST} calls)` : '') +
        `, ${threads.length} thread${threads.length === 1 ? '' : 's'}`;
      $('loading').remove();
      if (!N) { $('call').textContent = 'The recording has no call.'; document.body.dataset.ready = '1'; return; }
      buildIndex();
      wire();
      drawTimeline();
      const m = /#seq=(\d+)/.exec(location.hash);
      gotoIndex(m ? indexOfSeq(+m[1]) : 0);
      document.body.dataset.ready = '1';
    } catch (err) {
      const box = $('error');
      box.style.display = 'block';
      box.textContent = 'heap-timeline: ' + (err && err.stack ? err.stack : err);
      document.body.dataset.error = String(err);
      throw err;
    }
  }

  window.heapTimeline = {
    goto(seq) { gotoIndex(indexOfSeq(seq)); return C.seq[cur]; },
    gotoIndex(i) { gotoIndex(i); return C.seq[cur]; },
    step(n) { step(n === undefined ? 1 : n); return C.seq[cur]; },
    search(addr) { $('search').value = typeof addr === 'number' ? hex(addr) : String(addr); return runSearch(); },
    get seq() { return C.seq[cur]; },
    get index() { return cur; },
    get count() { return N; },
    get keyframes() { return keyframes.length; },
    // the state shown, as text (for tests: the same call reached by any path
    // must give the same text)
    digest() {
      return state.maps.map((m, h) => {
        const keys = Array.from(m.keys()).sort((x, y) => x - y);
        const sorted = state.sorted ? state.sorted[h].join(',') === keys.join(',') : true;
        return `${h}:${state.ext[h]}:${sorted}:` + keys.map((a) => a + '=' + m.get(a)).join(',');
      }).join(';') + `|${state.live}|${state.inuse}|${state.total}`;
    },
  };

  main();
})();
