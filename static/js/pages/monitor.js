// The admin monitor: every conversation of the workspace, filtered by member and status,
// updated live. Opening one shows the chat read-only unless it is assigned to the admin.

import { h, replace } from '../dom.js';
import { renderInboxLike, searchBox, labelSelect } from '../inboxview.js';

export function render(root, ctx, route) {
  const state = { member: '', status: '', q: '', label_id: '' };
  let view = null;
  // Each member with their state: deactivated or invited, else available / away / offline.
  const memberLabel = (m) => {
    if (m.status !== 'active') return `${m.name || m.email} (${m.status.replace('_', ' ')})`;
    const p = (ctx.presence && ctx.presence.get(m.id)) || m.presence;
    return p ? `${m.name || m.email} · ${p}` : m.name || m.email;
  };
  const members = h('select', { id: 'monitor-member', 'aria-label': 'Filter by member' });
  const fillMembers = () => {
    const keep = members.value;
    replace(members, h('option', { value: '' }, 'All members'), h('option', { value: 'none' }, 'Unassigned'), [...ctx.members.values()].map((m) => h('option', { value: m.id }, memberLabel(m))));
    members.value = keep;
  };
  fillMembers();
  const offDirectory = ctx.onDirectory ? ctx.onDirectory(() => (members.isConnected ? fillMembers() : offDirectory())) : null;
  members.addEventListener('change', () => {
    state.member = members.value;
    view.reload();
  });
  const status = h('select', { id: 'monitor-status', 'aria-label': 'Filter by status' }, h('option', { value: '' }, 'Any status'), h('option', { value: 'open' }, 'Open'), h('option', { value: 'closed' }, 'Closed'));
  status.addEventListener('change', () => {
    state.status = status.value;
    view.reload();
  });
  const search = searchBox('monitor-search', (q) => {
    state.q = q;
    view.reload();
  });
  const labels = labelSelect(ctx, (id) => {
    state.label_id = id;
    view.reload();
  });
  const tools = [h('h1', { class: 'pane-title' }, 'Monitor ', h('span', { class: 'muted small' }, 'all conversations, live')), h('div', { class: 'tool-row' }, members, status), h('div', { class: 'tool-row' }, search, labels)];
  view = renderInboxLike(root, ctx, route, {
    base: '#/monitor',
    label: 'All conversations',
    tools,
    search,
    emptyText: 'No conversations match.',
    filter: () => ({
      assignee_id: state.member && state.member !== 'none' ? state.member : '',
      unassigned: state.member === 'none',
      status: state.status,
      q: state.q,
      label_id: state.label_id,
    }),
  });
  return view;
}
