// Leads: the CRM list. All / Mine / Unassigned / Uncontacted, a member's or a group's leads, search, keyset
// paging ("Load more", never everything at once) and the lead's details on the side. Leads are
// selected (or "all of this member's") and reassigned in bulk, or added to / removed from a
// group. CSV import shows what was created and updated and every error with its line; export
// downloads what the list shows.

import { api, all, ApiError } from '../api.js';
import { h, replace } from '../dom.js';
import { full, phone as showPhone } from '../format.js';
import { field, errorLine, statusLine } from '../settings.js';
import { duration } from './activity.js';

const TABS = [
  ['all', 'All'],
  ['mine', 'Mine'],
  ['unassigned', 'Unassigned'],
  ['uncontacted', 'Uncontacted'],
];

/** One CSV cell: quoted when needed, formulas defused as the server's export does. */
function cell(v) {
  let s = v === null || v === undefined ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export async function render(root, ctx, route) {
  const state = {
    tab: route.query.get('contacted') === 'false' ? 'uncontacted' : 'all',
    assignee: route.query.get('assignee_id') || '',
    group: route.query.get('group_id') || '',
    contacted: route.query.get('contacted') === 'true' ? 'true' : '',
    q: '',
    leads: [],
    next: null,
    selected: new Set(),
    openId: route.id || null,
    loading: false,
    gen: 0,
    destroyed: false,
    groups: [],
  };
  const canBulk = ctx.isAdmin || ctx.perms.view_others_leads;
  const canImport = ctx.isAdmin || ctx.perms.manage_integrations;
  const canGroups = ctx.isAdmin || ctx.perms.manage_groups;
  const memberName = (id) => (id ? ctx.memberName(id) : 'Unassigned');
  const activeMembers = () => [...ctx.members.values()].filter((m) => m.status === 'active').sort((a, b) => (a.name || a.email).localeCompare(b.name || b.email));

  // ---- Tools ----
  const tabs = TABS.map(([key, title]) => {
    const b = h('button', { type: 'button', role: 'tab', class: 'tab', id: `leads-tab-${key}`, 'aria-selected': String(key === state.tab) }, title);
    b.addEventListener('click', () => {
      state.tab = key;
      state.contacted = '';
      for (const [i, t] of tabs.entries()) t.setAttribute('aria-selected', String(TABS[i][0] === key));
      reload();
    });
    return b;
  });
  const memberFilter = h('select', { id: 'leads-member' }, h('option', { value: '' }, 'Any member'), activeMembers().map((m) => h('option', { value: m.id, selected: m.id === state.assignee }, m.name || m.email)));
  const groupFilter = h('select', { id: 'leads-group' }, h('option', { value: '' }, 'Any group'));
  const search = h('input', { type: 'search', id: 'leads-search', placeholder: 'Name or phone', autocomplete: 'off' });
  let searchTimer = null;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.q = search.value.trim();
      reload();
    }, 250);
  });
  memberFilter.addEventListener('change', () => {
    state.assignee = memberFilter.value;
    reload();
  });
  groupFilter.addEventListener('change', () => {
    state.group = groupFilter.value;
    reload();
  });

  // ---- List ----
  const selectAll = h('input', { type: 'checkbox', id: 'leads-select-all', 'aria-label': 'Select every lead shown' });
  selectAll.addEventListener('change', () => {
    for (const l of state.leads) if (selectAll.checked) state.selected.add(l.id);
    if (!selectAll.checked) state.selected.clear();
    renderList();
  });
  const tbody = h('tbody', {});
  const table = h(
    'table',
    { class: 'data-table', id: 'leads-table', 'aria-label': 'Leads' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, selectAll), ['Name', 'Phone', 'Assignee', 'Groups', 'Contacted', 'Last activity'].map((t) => h('th', { scope: 'col' }, t)))),
    tbody,
  );
  const more = h('button', { type: 'button', class: 'btn wide load-more', id: 'leads-more', hidden: true }, 'Load more');
  more.addEventListener('click', () => loadPage());
  const empty = h('p', { class: 'muted empty', hidden: true }, 'No leads match.');
  const listError = errorLine('leads-error');
  const count = h('span', { class: 'muted', id: 'leads-count', role: 'status', 'aria-live': 'polite' });

  // ---- Bulk actions ----
  const bulkTo = h('select', { id: 'leads-bulk-to' }, h('option', { value: '' }, 'Choose a member'));
  const reassign = h('button', { type: 'button', class: 'btn primary', id: 'leads-reassign' }, 'Reassign selected');
  const reassignAll = h('button', { type: 'button', class: 'btn', id: 'leads-reassign-all', hidden: true }, 'Reassign all of this member’s leads');
  const bulkGroup = h('select', { id: 'leads-bulk-group' }, h('option', { value: '' }, 'Choose a group'));
  const addGroup = h('button', { type: 'button', class: 'btn', id: 'leads-group-add' }, 'Add selected to group');
  const removeGroup = h('button', { type: 'button', class: 'btn', id: 'leads-group-remove' }, 'Remove selected from group');
  const bulkStatus = statusLine('leads-bulk-status');
  const bulkError = errorLine('leads-bulk-error');
  const bulk = h(
    'div',
    { class: 'tool-row bulk-bar', role: 'group', 'aria-label': 'With the selected leads' },
    canBulk ? [field('Reassign to', bulkTo), reassign, reassignAll] : null,
    canGroups ? [field('Group', bulkGroup), addGroup, removeGroup] : null,
  );

  // ---- Import / export ----
  const file = h('input', { type: 'file', id: 'leads-import-file', accept: '.csv,text/csv' });
  const importButton = h('button', { type: 'button', class: 'btn', id: 'leads-import' }, 'Import');
  const importResult = h('div', { id: 'leads-import-result', role: 'status', 'aria-live': 'polite' });
  const exportButton = h('button', { type: 'button', class: 'btn', id: 'leads-export' }, 'Export CSV');
  const exportError = errorLine('leads-export-error');

  const details = h('aside', { class: 'lead-details', id: 'lead-details', 'aria-label': 'Lead details', tabindex: '-1' });

  replace(
    root,
    h(
      'div',
      { class: 'settings-scroll' },
      h(
        'section',
        { class: 'settings wide-page', 'aria-labelledby': 'leads-title' },
        h('h1', { id: 'leads-title' }, 'Leads'),
        h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Which leads' }, tabs),
        h('div', { class: 'tool-row settings-tools', role: 'search', 'aria-label': 'Filter leads' }, field('Search', search), field('Member', memberFilter), field('Group', groupFilter), exportButton),
        exportError,
        canBulk || canGroups ? [bulk, bulkStatus, bulkError] : null,
        h('div', { class: 'leads-layout' }, h('div', { class: 'leads-list' }, count, listError, table, empty, more), details),
        canImport
          ? h(
              'section',
              { class: 'settings-panel', 'aria-labelledby': 'leads-import-title' },
              h('h2', { id: 'leads-import-title' }, 'Import from CSV'),
              h('p', { class: 'muted small' }, 'Columns name and phone are required; source, group, assignee_email and any others are optional. A row whose phone is known updates that lead.'),
              h('div', { class: 'tool-row' }, field('CSV file', file), importButton),
              importResult,
            )
          : null,
      ),
    ),
  );

  // ---- Loading ----
  function params() {
    return {
      assignee_id: state.tab === 'mine' ? ctx.me.id : state.tab === 'unassigned' ? '' : state.assignee,
      unassigned: state.tab === 'unassigned' ? 'true' : '',
      contacted: state.tab === 'uncontacted' ? 'false' : state.contacted,
      group_id: state.group,
      q: state.q,
    };
  }

  async function loadPage() {
    if (state.loading) return;
    // A reload while this page loads makes its answer stale: it is dropped.
    const gen = state.gen;
    state.loading = true;
    more.disabled = true;
    table.setAttribute('aria-busy', 'true');
    try {
      const page = await api.get('/leads', { ...params(), cursor: state.next, limit: 50 });
      if (gen !== state.gen) return;
      if (state.destroyed) return;
      state.leads.push(...page.leads);
      state.next = page.next_cursor;
      listError.textContent = '';
    } catch (e) {
      listError.textContent = e.message;
    } finally {
      if (gen === state.gen) {
        state.loading = false;
        more.disabled = false;
        table.setAttribute('aria-busy', 'false');
      }
    }
    renderList();
  }

  function reload() {
    state.gen += 1;
    state.loading = false;
    state.leads = [];
    state.next = null;
    state.selected.clear();
    selectAll.checked = false;
    reassignAll.hidden = !(state.tab === 'all' && state.assignee);
    loadPage();
  }

  const groupName = (id) => (state.groups.find((g) => g.id === id) || {}).name || 'a group';

  function renderList() {
    replace(
      tbody,
      state.leads.map((l) => {
        const box = h('input', { type: 'checkbox', checked: state.selected.has(l.id), 'aria-label': `Select ${l.name}` });
        box.addEventListener('change', () => {
          if (box.checked) state.selected.add(l.id);
          else state.selected.delete(l.id);
          renderCount();
        });
        const open = h('a', { href: `#/leads/${l.id}`, class: 'lead-open' }, l.name);
        return h(
          'tr',
          { dataset: { id: l.id }, 'aria-current': l.id === state.openId ? 'true' : null },
          h('td', {}, box),
          h('th', { scope: 'row' }, open),
          h('td', {}, showPhone(l.phone)),
          h('td', {}, memberName(l.assignee_id)),
          h('td', {}, l.group_ids.map(groupName).join(', ')),
          h('td', {}, l.contacted ? 'Yes' : 'Not yet'),
          h('td', {}, h('time', { datetime: l.last_activity_at || l.created_at }, full(l.last_activity_at || l.created_at))),
        );
      }),
    );
    empty.hidden = state.leads.length > 0 || state.loading;
    more.hidden = !state.next;
    renderCount();
  }

  function renderCount() {
    const shown = `${state.leads.length}${state.next ? '+' : ''} ${state.leads.length === 1 ? 'lead' : 'leads'} shown`;
    count.textContent = state.selected.size ? `${shown}, ${state.selected.size} selected` : shown;
  }

  // ---- Details ----
  async function openLead(id) {
    state.openId = id;
    for (const tr of tbody.querySelectorAll('tr')) tr.setAttribute('aria-current', String(tr.dataset.id === id));
    if (!id) {
      replace(details, h('p', { class: 'placeholder' }, 'Select a lead to see its details.'));
      return;
    }
    replace(details, h('p', { class: 'muted' }, 'Loading…'));
    let lead;
    let convs = [];
    try {
      [lead, convs] = await Promise.all([api.get(`/leads/${id}`), api.get('/conversations', { lead_id: id }).then((p) => p.conversations)]);
    } catch (e) {
      if (state.openId === id) replace(details, h('p', { class: 'form-error', role: 'alert' }, e.status === 404 ? 'This lead does not exist or you can’t see it.' : e.message));
      return;
    }
    if (state.openId !== id || state.destroyed) return;
    const custom = Object.entries(lead.custom_fields || {});
    replace(
      details,
      h('h2', {}, lead.name),
      h(
        'dl',
        { class: 'lead-facts' },
        h('dt', {}, 'Phone'),
        h('dd', {}, showPhone(lead.phone) || '—'),
        h('dt', {}, 'Source'),
        h('dd', {}, lead.source || '—'),
        h('dt', {}, 'Assignee'),
        h('dd', {}, memberName(lead.assignee_id)),
        h('dt', {}, 'Groups'),
        h('dd', {}, lead.group_ids.map(groupName).join(', ') || '—'),
        h('dt', {}, 'Contacted'),
        h('dd', {}, lead.contacted ? 'Yes' : 'Not yet'),
        h('dt', {}, 'First response'),
        h('dd', {}, duration(lead.first_response_secs)),
        h('dt', {}, 'Last activity'),
        h('dd', {}, full(lead.last_activity_at)),
        h('dt', {}, 'Created'),
        h('dd', {}, full(lead.created_at)),
        custom.map(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'string' ? v : JSON.stringify(v))]),
      ),
      h(
        'p',
        { class: 'tool-row' },
        h('a', { href: `#/activity?lead_id=${lead.id}`, class: 'btn small' }, 'Activity'),
        convs.map((c) => h('a', { href: `#/inbox/${c.id}`, class: 'btn small' }, `Open chat${convs.length > 1 ? ` (${c.number_id.slice(0, 4)})` : ''}`)),
      ),
    );
  }

  // ---- Bulk ----
  async function bulkAction(button, work) {
    bulkError.textContent = '';
    bulkStatus.textContent = '';
    button.disabled = true;
    try {
      bulkStatus.textContent = await work();
      reload();
      if (state.openId) openLead(state.openId);
    } catch (e) {
      bulkError.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  }

  reassign.addEventListener('click', () =>
    bulkAction(reassign, async () => {
      const to = bulkTo.value;
      if (!to) throw new ApiError(0, 'no_member', 'Choose the member to reassign to.');
      const chosen = state.leads.filter((l) => state.selected.has(l.id));
      if (!chosen.length) throw new ApiError(0, 'nothing_selected', 'Select the leads to reassign first.');
      let moved = 0;
      const byOwner = new Map();
      for (const l of chosen) {
        if (l.assignee_id === to) continue;
        const key = l.assignee_id || '';
        byOwner.set(key, [...(byOwner.get(key) || []), l.id]);
      }
      for (const [from, ids] of byOwner) {
        if (from) {
          const out = await api.post('/leads/bulk-reassign', { from_member_id: from, to_member_id: to, lead_ids: ids });
          moved += out.moved;
        } else {
          // Unassigned leads: in bulk where the server takes them, else one by one.
          try {
            const out = await api.post('/leads/bulk-reassign', { from_member_id: null, to_member_id: to, lead_ids: ids });
            moved += out.moved;
          } catch (e) {
            if (e.status !== 400 && e.status !== 422) throw e;
            for (const id of ids) {
              await api.patch(`/leads/${id}`, { assignee_id: to });
              moved += 1;
            }
          }
        }
      }
      return `${moved} ${moved === 1 ? 'lead' : 'leads'} reassigned to ${memberName(to)}.`;
    }),
  );
  reassignAll.addEventListener('click', () =>
    bulkAction(reassignAll, async () => {
      const to = bulkTo.value;
      if (!to) throw new ApiError(0, 'no_member', 'Choose the member to reassign to.');
      const out = await api.post('/leads/bulk-reassign', { from_member_id: state.assignee, to_member_id: to });
      return `${out.moved} ${out.moved === 1 ? 'lead' : 'leads'} of ${memberName(state.assignee)} reassigned to ${memberName(to)}.`;
    }),
  );
  for (const [button, adding] of [
    [addGroup, true],
    [removeGroup, false],
  ]) {
    button.addEventListener('click', () =>
      bulkAction(button, async () => {
        const g = bulkGroup.value;
        if (!g) throw new ApiError(0, 'no_group', 'Choose the group first.');
        const chosen = state.leads.filter((l) => state.selected.has(l.id));
        if (!chosen.length) throw new ApiError(0, 'nothing_selected', 'Select the leads first.');
        let changed = 0;
        for (const l of chosen) {
          const has = l.group_ids.includes(g);
          if (has === adding) continue;
          const group_ids = adding ? [...l.group_ids, g] : l.group_ids.filter((x) => x !== g);
          await api.patch(`/leads/${l.id}`, { group_ids });
          changed += 1;
        }
        return `${changed} ${changed === 1 ? 'lead' : 'leads'} ${adding ? 'added to' : 'removed from'} ${groupName(g)}.`;
      }),
    );
  }

  // ---- Import / export ----
  importButton.addEventListener('click', async () => {
    const f = file.files && file.files[0];
    if (!f) {
      replace(importResult, h('p', { class: 'form-error', role: 'alert' }, 'Choose a CSV file first.'));
      return;
    }
    importButton.disabled = true;
    replace(importResult, h('p', { class: 'muted' }, 'Importing…'));
    try {
      const res = await fetch('/api/v1/leads/import', { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'text/csv; charset=utf-8', Accept: 'application/json' }, body: f });
      const body = await res.json().catch(() => null);
      if (!res.ok) {
        replace(importResult, h('p', { class: 'form-error', role: 'alert' }, (body && body.error && body.error.message) || `Import failed (${res.status}).`));
        return;
      }
      replace(
        importResult,
        h('p', { id: 'leads-import-summary' }, `Created ${body.created}, updated ${body.updated}${body.error_count ? `, ${body.error_count} ${body.error_count === 1 ? 'row' : 'rows'} skipped` : ''}.`),
        body.errors.length ? h('ul', { class: 'import-errors', 'aria-label': 'Import errors' }, body.errors.map((e) => h('li', {}, `Line ${e.line}: ${e.message}`))) : null,
      );
      reload();
    } catch (e) {
      replace(importResult, h('p', { class: 'form-error', role: 'alert' }, e.message));
    } finally {
      importButton.disabled = false;
    }
  });

  exportButton.addEventListener('click', async () => {
    exportError.textContent = '';
    const p = params();
    const filtered = state.tab !== 'all' || p.assignee_id || p.group_id || p.q || p.contacted;
    if (!filtered) {
      location.href = '/api/v1/leads/export';
      return;
    }
    // What the list shows: its filters, every page (at most 10,000 leads).
    exportButton.disabled = true;
    try {
      const leads = await all('/leads', 'leads', p, 10000);
      const keys = [...new Set(leads.flatMap((l) => Object.keys(l.custom_fields || {})))].sort();
      const head = ['name', 'phone', 'source', 'group', 'assignee_email', ...keys];
      const email = (id) => (id ? (ctx.members.get(id) || (id === ctx.me.id ? ctx.me : {})).email || '' : '');
      const lines = [head.map(cell).join(',')];
      for (const l of leads) {
        const custom = keys.map((k) => {
          const v = (l.custom_fields || {})[k];
          return v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
        });
        lines.push([l.name, l.phone, l.source, l.group_ids.map(groupName).join(';'), email(l.assignee_id), ...custom].map(cell).join(','));
      }
      const a = h('a', { href: URL.createObjectURL(new Blob([`${lines.join('\r\n')}\r\n`], { type: 'text/csv' })), download: 'leads.csv', hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (e) {
      exportError.textContent = e.message;
    } finally {
      exportButton.disabled = false;
    }
  });

  // ---- Start ----
  for (const m of activeMembers()) bulkTo.append(h('option', { value: m.id }, m.name || m.email));
  try {
    state.groups = (await api.get('/groups')).groups;
  } catch {
    state.groups = [];
  }
  for (const g of state.groups) {
    groupFilter.append(h('option', { value: g.id, selected: g.id === state.group }, g.name));
    bulkGroup.append(h('option', { value: g.id }, g.name));
  }
  reload();
  openLead(state.openId);

  let timer = null;
  const off = ctx.live.on((e) => {
    if (e.type !== 'lead.updated' && e.type !== 'lead.deleted' && e.type !== 'resync') return;
    const id = e.data && e.data.id;
    clearTimeout(timer);
    timer = setTimeout(() => {
      const i = state.leads.findIndex((l) => l.id === id);
      if (e.type === 'lead.updated' && i >= 0) {
        state.leads[i] = { ...state.leads[i], ...e.data };
        renderList();
      }
      if (id && id === state.openId) openLead(id);
    }, 300);
  });

  return {
    update(r) {
      const assignee = r.query.get('assignee_id') || state.assignee;
      const group = r.query.get('group_id') || state.group;
      if (assignee !== state.assignee || group !== state.group) {
        state.assignee = assignee;
        state.group = group;
        memberFilter.value = assignee;
        groupFilter.value = group;
        reload();
      }
      if ((r.id || null) !== state.openId) openLead(r.id || null);
    },
    destroy() {
      state.destroyed = true;
      clearTimeout(timer);
      clearTimeout(searchTimer);
      off();
    },
  };
}
