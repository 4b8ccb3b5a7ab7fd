// Judging in the ranked table at typing speed. Runs once when the table component mounts (Gradio custom HTML
// js_on_load: `element`, `trigger`, `props`, `watch`). Clicks and keys are delegated from the component's root,
// which stays in place while Gradio patches the table inside it.
//
// A key or a button press changes the row at once and moves the focus on keydown; the judgement goes into a queue
// that sends one at a time, in order, each naming its document (data-doc, the hash of its text) and the ranking's
// query (data-query), never a row position. The server answers each in the table's `ack` prop with what it stored;
// the row then shows saved or failed. Ctrl+Z (⌘Z) undoes the last judgement made here.
//
// "One document at a time" (long documents) is the same table shown differently: only the current row, its whole
// text at reading width, the run's query and instruction pinned above it, previous / next. Keys, the queue, undo
// and the save states are the ones above. A new run (data-run) starts it again at the first document; the page's
// stale mark (STALE_JS sets data-stale on the component) says the inputs changed since the run.
const ACK_TIMEOUT_MS = 60000;
const state = {queue: [], inflight: null, seq: 0, desired: new Map(), status: new Map(), errors: new Map(),
               undo: [], one: false, current: null, run: null};
const table = () => element.querySelector('table.rr-table');
const rowOf = (node) => node && node.closest ? node.closest('tr[data-doc]') : null;
const rowsOf = (doc) => Array.from(element.querySelectorAll('tr[data-doc]')).filter((tr) => tr.dataset.doc === doc);
const labelOf = (tr) => (tr.dataset.label === '' || tr.dataset.label === undefined ? null : Number(tr.dataset.label));
const STATUS_TEXT = {saving: 'saving…', saved: 'saved', failed: 'not saved'};

function show(doc, label) {
  rowsOf(doc).forEach((tr) => {
    tr.dataset.label = label === null ? '' : String(label);
    tr.querySelectorAll('button[data-label]').forEach((b) => {
      b.setAttribute('aria-pressed', String(label !== null && Number(b.dataset.label) === label));
    });
  });
}

function mark(doc) {
  const status = state.status.get(doc);
  rowsOf(doc).forEach((tr) => {
    const badge = tr.querySelector('.rr-save');
    if (!badge) return;
    badge.dataset.state = status || '';
    badge.textContent = status ? STATUS_TEXT[status] : '';
    badge.title = status === 'failed' ? (state.errors.get(doc) || 'not saved') + ' (press the key again to retry)' : '';
  });
}

function count() {
  const labels = new Map();
  element.querySelectorAll('tr[data-doc]').forEach((tr) => labels.set(tr.dataset.doc, labelOf(tr)));
  const judged = Array.from(labels.values()).filter((l) => l !== null).length;
  element.querySelectorAll('.rr-judged-count, .rr-onecount').forEach((out) => {
    out.textContent = `judged ${judged} / ${labels.size}`;
  });
}

const rows = () => Array.from(element.querySelectorAll('tr[data-doc]'));

function setCurrent(tr) {
  // the document the one-at-a-time view shows (kept by document, so a re-rendered table keeps it)
  const all = rows();
  const current = tr || all.find((r) => r.dataset.doc === state.current) || all[0];
  all.forEach((r) => r.classList.toggle('rr-current', r === current));
  state.current = current ? current.dataset.doc : null;
  const at = current ? all.indexOf(current) : -1;
  const pos = element.querySelector('.rr-onepos');
  if (pos) pos.textContent = current ? `document ${at + 1} of ${all.length} (rank ${current.dataset.rank})` : '';
  element.querySelectorAll('button[data-nav]').forEach((b) => {
    b.disabled = !current || (b.dataset.nav === '-1' ? at <= 0 : at >= all.length - 1);
  });
  return current;
}

function showMode() {
  element.classList.toggle('rr-one-mode', state.one);
  element.querySelectorAll('button[data-mode]').forEach((b) => {
    b.setAttribute('aria-pressed', String(state.one));
    b.textContent = state.one ? 'Back to the table' : 'One document at a time';
  });
  const root = element.closest('[data-stale]');
  element.querySelectorAll('.rr-onestale').forEach((n) => { n.hidden = !root; });
  setCurrent(null);
}

function pump() {
  if (state.inflight || !state.queue.length) return;
  const item = state.queue.shift();
  state.inflight = item;
  item.timer = setTimeout(() => acknowledged({seq: item.seq, ok: false, doc: item.doc, label: null,
                                              error: 'no answer from the server', timeout: true}), ACK_TIMEOUT_MS);
  // the table is re-rendered by the server once the queue is empty, for the disagreement marks
  trigger('click', {action: item.action, doc: item.doc, label: item.label, query: item.query, seq: item.seq,
                    refresh: state.queue.length === 0});
}

function enqueue(doc, action, label) {
  const t = table();
  state.queue.push({doc, action, label, query: t ? t.dataset.query : '', seq: ++state.seq});
  if (action !== 'select') {
    state.desired.set(doc, action === 'clear' ? null : label);
    state.status.set(doc, 'saving');
    state.errors.delete(doc);
    mark(doc);
  }
  pump();
}

function judge(tr, label, undoable) {
  const doc = tr.dataset.doc;
  const before = labelOf(tr);
  if (undoable) state.undo.push({doc, before});
  show(doc, label);
  count();
  enqueue(doc, label === null ? 'clear' : 'label', label);
}

function acknowledged(ack) {
  const item = state.inflight;
  if (!ack || !item || ack.seq !== item.seq) return;  // a late answer to one already given up on
  clearTimeout(item.timer);
  state.inflight = null;
  const doc = item.doc;
  if (item.action !== 'select') {
    const newer = state.queue.some((q) => q.doc === doc && q.action !== 'select');
    if (!newer) {
      state.desired.delete(doc);
      state.status.set(doc, ack.ok ? 'saved' : 'failed');
      if (ack.ok) state.errors.delete(doc); else state.errors.set(doc, ack.error || 'not saved');
      // the row shows what the store holds (on a failure too), unless the answer did not come or the table
      // now shows another query
      const t = table();
      if (!ack.timeout && t && t.dataset.query === item.query) show(doc, ack.label === undefined ? null : ack.label);
      mark(doc);
      count();
    }
  }
  pump();
}

function reapply() {
  // after the server re-rendered the table: what is still on its way, and each row's save state
  state.desired.forEach((label, doc) => show(doc, label));
  state.status.forEach((_, doc) => mark(doc));
  count();
}

// the page's pinned run header: the one-at-a-time view's query sticks right under it
const runHeader = document.querySelector('#rr-run-header');
const pinUnder = () => element.style.setProperty('--rr-pinned-top', `${runHeader ? runHeader.offsetHeight : 0}px`);
if (runHeader && window.ResizeObserver) new ResizeObserver(pinUnder).observe(runHeader);

function toTop() {
  // the pinned query and the start of the current document in sight
  const wrap = element.querySelector('.rr-table-wrap');
  if (!wrap) return;
  pinUnder();
  const top = wrap.getBoundingClientRect().top;
  const pinned = runHeader ? runHeader.offsetHeight : 0;
  if (top < pinned || top > window.innerHeight / 3) window.scrollBy({top: top - pinned - 4});
}

const focusRow = (tr) => {
  if (!tr) return;
  if (state.one) setCurrent(tr);  // shown before it takes the focus (a hidden row cannot have it)
  tr.focus({preventScroll: state.one});
  if (state.one) toTop();
};

function step(by) {
  const all = rows();
  const at = all.findIndex((r) => r.dataset.doc === state.current);
  const next = all[Math.max(0, Math.min(all.length - 1, at + by))];
  focusRow(next);
}

element.addEventListener('click', (event) => {
  const switcher = event.target.closest ? event.target.closest('button[data-mode], button[data-nav]') : null;
  if (switcher && element.contains(switcher)) {
    event.preventDefault();
    if (switcher.dataset.mode) {
      state.one = !state.one;
      showMode();
      const current = setCurrent(null);
      if (state.one && current) focusRow(current);
    } else step(Number(switcher.dataset.nav));
    return;
  }
  const button = event.target.closest ? event.target.closest('button[data-action]') : null;
  const tr = rowOf(button);
  if (!tr || !element.contains(tr)) return;
  event.preventDefault();
  const action = button.dataset.action;
  if (action === 'explain') { trigger('submit', {rank: Number(tr.dataset.rank), doc: tr.dataset.doc}); return; }
  if (action === 'label') judge(tr, Number(button.dataset.label), true);
  else if (action === 'clear') judge(tr, null, true);
  focusRow(tr);
});

element.addEventListener('keydown', (event) => {
  const tr = rowOf(event.target);
  if (!tr || event.target !== tr || event.altKey) return;
  const key = event.key;
  if ((event.ctrlKey || event.metaKey) && (key === 'z' || key === 'Z')) {
    event.preventDefault();
    const last = state.undo.pop();
    if (!last) return;
    const rows = rowsOf(last.doc);
    if (rows.length) { judge(rows[0], last.before, false); focusRow(rows[0]); }
    return;
  }
  if (event.ctrlKey || event.metaKey) return;
  if (key === '0' || key === '1' || key === '2') {
    event.preventDefault();
    if (event.repeat) return;  // a held key is one judgement, not a stream of them
    judge(tr, Number(key), true);
    focusRow(tr.nextElementSibling || tr);  // on keydown: the next key belongs to the next document
  } else if (key === 'Delete' || key === 'Backspace') {
    event.preventDefault();
    if (labelOf(tr) !== null) judge(tr, null, true);
  } else if (key === 'ArrowDown' || key === 'j' || (state.one && key === 'ArrowRight')) {
    event.preventDefault(); focusRow(tr.nextElementSibling);
  } else if (key === 'ArrowUp' || key === 'k' || (state.one && key === 'ArrowLeft')) {
    event.preventDefault(); focusRow(tr.previousElementSibling);
  } else if (key === 'n') {
    event.preventDefault();
    enqueue(tr.dataset.doc, 'select', null);
    let tries = 0;  // the note box may still be rendering (a closed panel, a busy page): look again
    const focusNote = () => {
      const note = document.querySelector('#rr-judgement-note textarea');
      if (note && note.offsetParent !== null) note.focus();
      else if (++tries < 30) setTimeout(focusNote, 200);
    };
    setTimeout(focusNote, 300);
  }
});

// the selected row: the side panel (prompt, explanation, judgement) follows the row that has the focus
let selectTimer = null;
element.addEventListener('focusin', (event) => {
  const tr = rowOf(event.target);
  if (!tr || !element.contains(tr)) return;
  element.querySelectorAll('tr.rr-selected').forEach((r) => r.classList.remove('rr-selected'));
  tr.classList.add('rr-selected');
  clearTimeout(selectTimer);
  if (state.selected === tr.dataset.doc) return;
  selectTimer = setTimeout(() => {  // once the focus rests (not on every row a judging run passes)
    state.selected = tr.dataset.doc;
    const t = table();
    trigger('select', {rank: Number(tr.dataset.rank), doc: tr.dataset.doc, query: t ? t.dataset.query : ''});
  }, 600);
});

watch('ack', () => acknowledged(props.ack));
watch('value', () => {
  const t = table();
  if (t && t.dataset.query !== state.query) {  // another ranking: nothing of the last one applies here
    state.query = t.dataset.query;
    state.status.clear(); state.errors.clear(); state.desired.clear(); state.undo = []; state.selected = null;
  }
  if (t && t.dataset.run && t.dataset.run !== state.run) {  // a new run: from its first document, not stale
    state.run = t.dataset.run;
    state.current = null;
    const root = element.closest('[data-stale]');
    if (root) delete root.dataset.stale;
  }
  reapply();
  showMode();
});
