// The agents' inbox: tabs Mine / Unassigned / All, search, label filter, and the chat.

import { h } from '../dom.js';
import { renderInboxLike, searchBox, labelSelect } from '../inboxview.js';

const TABS = [
  ['mine', 'Mine'],
  ['unassigned', 'Unassigned'],
  ['all', 'All'],
];

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
  const tools = [h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Which conversations' }, tabButtons), h('div', { class: 'tool-row' }, search, labels)];
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
