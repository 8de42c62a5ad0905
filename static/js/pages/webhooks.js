// Settings: Webhook journal (admins). Every webhook Meta delivered, newest first, filtered by
// state and paged by cursor; an entry's detail shows the raw body as received and replays it.

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { full, when } from '../format.js';
import { settingsFrame, notAllowed, field, errorLine, statusLine, statusChip, busy } from '../settings.js';

const STATES = [
  ['', 'Any state'],
  ['failed', 'Failed'],
  ['pending', 'Pending'],
  ['done', 'Done'],
];
const SHOW_AT_MOST = 256 * 1024; // characters of a body shown in the page

export function render(root, ctx, route) {
  if (!ctx.isAdmin) return notAllowed(root, 'Webhook journal', 'admins');
  const body = settingsFrame(root, 'Webhook journal', 'Every webhook Meta delivered, kept before it was answered. Failed ones (e.g. bodies that are not JSON) stay here; replaying one processes it again, which never duplicates a message.');
  const state = { filter: route.query.get('state') || '', events: [], next: null, openId: null, loading: false, destroyed: false };
  if (!STATES.some(([v]) => v === state.filter)) state.filter = '';

  const filter = h('select', { id: 'journal-state' }, STATES.map(([v, t]) => h('option', { value: v, selected: v === state.filter }, t)));
  filter.addEventListener('change', () => {
    state.filter = filter.value;
    reload();
  });
  const refresh = h('button', { type: 'button', class: 'btn', id: 'journal-refresh' }, 'Refresh');
  refresh.addEventListener('click', () => reload());
  const list = h('ul', { class: 'journal', id: 'journal', 'aria-label': 'Webhook events' });
  const more = h('button', { type: 'button', class: 'btn wide load-more', id: 'journal-more', hidden: true }, 'Load older');
  more.addEventListener('click', () => loadPage());
  const listError = errorLine('journal-error');
  const empty = h('p', { class: 'muted empty', hidden: true }, 'Nothing in the journal with this state.');
  const detail = h('section', { class: 'journal-detail', id: 'journal-detail', 'aria-label': 'Webhook event', tabindex: '-1' });

  replace(
    body,
    h(
      'div',
      { class: 'journal-layout' },
      h('div', { class: 'journal-list' }, h('div', { class: 'tool-row settings-tools' }, field('State', filter), refresh), listError, list, empty, more),
      detail,
    ),
  );

  async function loadPage() {
    if (state.loading) return;
    state.loading = true;
    more.disabled = true;
    try {
      const page = await api.get('/admin/webhook-events', { state: state.filter, cursor: state.next, limit: 50 });
      if (state.destroyed) return;
      state.events.push(...page.webhook_events);
      state.next = page.next_cursor;
      listError.textContent = '';
    } catch (e) {
      listError.textContent = e.message;
    } finally {
      state.loading = false;
      more.disabled = false;
    }
    renderList();
  }

  function reload() {
    state.events = [];
    state.next = null;
    replace(list);
    loadPage();
  }

  function renderList() {
    replace(list, state.events.map(entry));
    empty.hidden = state.events.length > 0 || state.loading;
    more.hidden = !state.next;
  }

  function entry(e) {
    return h(
      'li',
      {},
      h(
        'a',
        { class: ['journal-entry', e.state], href: `#/webhooks/${e.id}`, 'aria-current': e.id === state.openId ? 'true' : null, dataset: { id: e.id, state: e.state } },
        h('span', { class: 'journal-top' }, h('time', { datetime: e.received_at, title: full(e.received_at) }, when(e.received_at)), statusChip(e.state), e.attempts > 0 ? h('span', { class: 'muted small' }, `${e.attempts} failed ${e.attempts === 1 ? 'attempt' : 'attempts'}`) : null),
        e.error ? h('span', { class: 'journal-error small' }, e.error) : null,
      ),
    );
  }

  function replaceEvent(e) {
    const i = state.events.findIndex((x) => x.id === e.id);
    if (i >= 0) state.events[i] = { ...state.events[i], ...e };
    renderList();
  }

  async function open(id) {
    state.openId = id;
    for (const a of list.querySelectorAll('.journal-entry')) a.setAttribute('aria-current', String(a.dataset.id === id));
    if (!id) {
      replace(detail, h('p', { class: 'placeholder' }, 'Select an entry to see its body and replay it.'));
      return;
    }
    replace(detail, h('p', { class: 'muted' }, 'Loading…'));
    let e;
    try {
      e = await api.get(`/admin/webhook-events/${id}`);
    } catch (err) {
      if (state.openId === id) replace(detail, h('p', { class: 'form-error', role: 'alert' }, err.status === 404 ? 'This entry does not exist or belongs to another workspace.' : err.message));
      return;
    }
    if (state.openId !== id || state.destroyed) return;
    renderDetail(e);
  }

  function renderDetail(e) {
    const error = errorLine('journal-replay-error');
    const status = statusLine('journal-replay-status');
    const replay = h('button', { type: 'button', class: 'btn primary', id: 'journal-replay' }, 'Replay');
    replay.addEventListener('click', async () => {
      const out = await busy(replay, error, () => api.post(`/admin/webhook-events/${e.id}/replay`));
      if (!out) return;
      replaceEvent(out);
      renderDetail({ ...e, ...out, error: out.error });
      const msg = document.getElementById('journal-replay-status');
      if (msg) msg.textContent = out.state === 'done' ? 'Replayed: processed.' : out.state === 'failed' ? `Replayed: failed again (${out.error || 'no reason given'}).` : 'Replay queued.';
      document.getElementById('journal-replay')?.focus();
    });
    const raw = e.body || '';
    let shown = raw;
    let isJson = false;
    try {
      shown = JSON.stringify(JSON.parse(raw), null, 2);
      isJson = true;
    } catch {
      /* shown as received */
    }
    const cut = shown.length > SHOW_AT_MOST;
    replace(
      detail,
      h('div', { class: 'journal-head' }, h('h2', {}, 'Webhook ', statusChip(e.state)), replay),
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Received'), h('dd', {}, full(e.received_at)),
        e.attempts ? [h('dt', {}, 'Failed attempts'), h('dd', { id: 'journal-attempts' }, String(e.attempts))] : null,
        e.processed_at ? [h('dt', {}, 'Processed'), h('dd', {}, full(e.processed_at))] : null,
        e.error ? [h('dt', {}, 'Error'), h('dd', { class: 'journal-error', id: 'journal-detail-error' }, e.error)] : null,
        h('dt', {}, 'ID'), h('dd', {}, h('code', {}, e.id)),
      ),
      error,
      status,
      h('h3', {}, isJson ? 'Body (JSON, formatted)' : 'Body (as received, not JSON)'),
      h('pre', { class: 'raw-body', id: 'journal-body', tabindex: '0' }, cut ? shown.slice(0, SHOW_AT_MOST) : shown),
      cut ? h('p', { class: 'muted small' }, `Showing the first ${SHOW_AT_MOST / 1024} KiB of ${Math.round(shown.length / 1024)} KiB.`) : null,
    );
  }

  loadPage();
  open(route.id);
  return {
    update(r) {
      if (r.id !== state.openId) {
        open(r.id);
        if (r.id) detail.focus();
      }
    },
    destroy() {
      state.destroyed = true;
    },
  };
}
