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
  const tabButtons = TABS.map(([key, title]) => {
    const b = h('button', { type: 'button', role: 'tab', class: 'tab', id: `tab-${key}`, dataset: { tab: key }, 'aria-selected': String(key === state.tab) }, title);
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
    emptyText: 'No conversations here yet. New chats appear as they arrive.',
    filter: () => ({
      assignee_id: state.tab === 'mine' ? ctx.me.id : '',
      unassigned: state.tab === 'unassigned',
      q: state.q,
      label_id: state.label_id,
    }),
  });
  return view;
}
