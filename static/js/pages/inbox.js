// The agents' inbox: tabs Mine / Unassigned / All, search, label filter, and the chat.

import { api } from '../api.js';
import { h } from '../dom.js';
import { renderInboxLike, searchBox, labelSelect } from '../inboxview.js';

const TABS = [
  ['mine', 'Mine'],
  ['unassigned', 'Unassigned'],
  ['all', 'All'],
];

/**
 * The team view (a preference kept on the server): members who may see others' or unassigned
 * chats choose whether "All" shows them. Mine and Unassigned are not affected.
 */
function teamView(ctx, state, changed) {
  const mayOthers = ctx.isAdmin || ctx.perms.view_others_leads;
  const mayPool = ctx.isAdmin || ctx.perms.view_unassigned;
  if (!mayOthers && !mayPool) return null;
  const others = h('input', { type: 'checkbox', id: 'team-view-others', disabled: true });
  const pool = h('input', { type: 'checkbox', id: 'team-view-unassigned', disabled: true });
  const error = h('span', { class: 'form-error', role: 'alert' });
  const box = h(
    'details',
    { class: 'team-view' },
    h('summary', {}, 'Team view'),
    h(
      'fieldset',
      {},
      h('legend', { class: 'muted small' }, 'In “All”, also show'),
      mayOthers ? h('label', { class: 'check', for: 'team-view-others' }, others, ' Chats assigned to others') : null,
      mayPool ? h('label', { class: 'check', for: 'team-view-unassigned' }, pool, ' Unassigned chats') : null,
      error,
    ),
  );
  let prefs = null;
  api
    .get('/me/preferences')
    .then((p) => {
      prefs = p;
      state.teamView = p.team_view;
      if (!p.team_view.show_others || !p.team_view.show_unassigned) changed();
      others.checked = p.team_view.show_others;
      pool.checked = p.team_view.show_unassigned;
      others.disabled = false;
      pool.disabled = false;
    })
    .catch((e) => {
      error.textContent = e.message;
    });
  const save = async () => {
    if (!prefs) return;
    error.textContent = '';
    const next = { ...prefs, team_view: { show_others: others.checked, show_unassigned: pool.checked } };
    try {
      prefs = await api.put('/me/preferences', next);
      state.teamView = prefs.team_view;
      changed();
    } catch (e) {
      error.textContent = e.message;
      others.checked = prefs.team_view.show_others;
      pool.checked = prefs.team_view.show_unassigned;
    }
  };
  others.addEventListener('change', save);
  pool.addEventListener('change', save);
  return box;
}

export function render(root, ctx, route) {
  const state = { tab: localStorage.getItem('sb.tab') || 'all', q: '', label_id: '' };
  if (!TABS.some(([k]) => k === state.tab)) state.tab = 'all';
  let view = null;
  const badges = {};
  const tabButtons = TABS.map(([key, title]) => {
    badges[key] = h('span', { class: 'badge tab-count', hidden: true });
    const b = h('button', { type: 'button', role: 'tab', class: 'tab', id: `tab-${key}`, dataset: { tab: key }, 'aria-selected': String(key === state.tab) }, h('span', {}, title), badges[key]);
    b.addEventListener('click', () => {
      state.tab = key;
      localStorage.setItem('sb.tab', key);
      for (const t of tabButtons) t.setAttribute('aria-selected', String(t.dataset.tab === key));
      view.reload();
    });
    return b;
  });
  const search = searchBox('inbox-search', (q) => {
    state.q = q;
    view.reload();
  });
  const labels = labelSelect(ctx, (id) => {
    state.label_id = id;
    view.reload();
  });
  const tools = [h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Which conversations' }, tabButtons), h('div', { class: 'tool-row' }, search, labels), teamView(ctx, state, () => view && view.reload())];
  view = renderInboxLike(root, ctx, route, {
    base: '#/inbox',
    label: 'Inbox',
    tools,
    search,
    emptyText: () => {
      if (state.q) return `No conversations match “${state.q}”.`;
      const seesPool = ctx.isAdmin || ctx.perms.view_unassigned;
      if (state.tab === 'mine') return 'No chats are assigned to you.';
      if (state.tab === 'unassigned') return seesPool ? 'No unassigned chats. New ones appear here as customers write.' : 'Only admins and members allowed to see unassigned chats see them here.';
      return seesPool ? 'No conversations yet. New chats appear here as customers write.' : 'No conversations yet. Chats assigned to you appear here.';
    },
    filter: () => ({
      assignee_id: state.tab === 'mine' ? ctx.me.id : '',
      unassigned: state.tab === 'unassigned',
      q: state.q,
      label_id: state.label_id,
      // Live arrivals follow the team view as the server's list does.
      hide_others: state.tab === 'all' && !!state.teamView && !state.teamView.show_others,
      hide_unassigned: state.tab === 'all' && !!state.teamView && !state.teamView.show_unassigned,
    }),
  });
  // Mine and Unassigned show how many of their chats have unread messages.
  const offCounts = ctx.attention
    ? ctx.attention.on((c) => {
        for (const [key, n] of [['mine', c.mine], ['unassigned', c.unassigned]]) {
          badges[key].hidden = !n;
          badges[key].textContent = n > 199 ? '199+' : String(n);
          badges[key].setAttribute('aria-label', `${n} with unread messages`);
        }
      })
    : () => {};
  const destroy = view.destroy;
  view.destroy = () => {
    offCounts();
    destroy();
  };
  return view;
}
