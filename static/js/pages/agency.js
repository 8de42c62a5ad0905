// Settings: Agency (admins). For every workspace: who manages it ("Managed by …", with
// Unlink). For an agency: its clients with their statuses and actions (resend, cancel,
// remove, unlink), inviting a client by its admin's email, and per managed client a
// read-only dashboard (#/agency/CLIENT) and a lead with its timeline (#/agency/CLIENT/LEAD).

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { full } from '../format.js';
import { settingsFrame, notAllowed, panel, field, errorLine, statusLine, confirmButton, busy, copyButton } from '../settings.js';

const STATUS_TEXT = { invited: 'Invited', not_linked: 'Not linked', managing: 'Managing' };

/** Seconds as "4 min" / "2 h 5 min"; "—" when there is none. */
function duration(secs) {
  if (secs === null || secs === undefined) return '—';
  if (secs < 60) return `${secs} s`;
  const min = Math.round(secs / 60);
  if (min < 60) return `${min} min`;
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}

function clientChip(status) {
  return h('span', { class: `chip state state-${status}`, dataset: { status } }, STATUS_TEXT[status] || status);
}

export function render(root, ctx, params) {
  if (!ctx.isAdmin) return notAllowed(root, 'Agency', 'admins');
  let view = null;
  const show = (p) => {
    if (view && view.destroy) view.destroy();
    const clientId = p && p.id;
    const leadId = p && p.rest && p.rest[1];
    view = clientId ? clientPage(root, clientId, leadId) : overview(root, ctx);
  };
  show(params);
  return {
    update: show,
    destroy() {
      if (view && view.destroy) view.destroy();
    },
  };
}

function overview(root, ctx) {
  const body = settingsFrame(root, 'Agency', 'An agency follows the leads of the workspaces that granted it access: their leads, timelines and team report, read-only.');
  const state = { destroyed: false, agency: null };

  const managed = h('div', { id: 'managed-by' });
  const managedError = errorLine('managed-error');
  const modeSlot = h('div', { id: 'agency-mode' });
  const clientsSlot = h('div', { id: 'agency-clients-slot' });
  replace(body, panel('This workspace', managed, managedError), modeSlot, clientsSlot);

  async function loadManaged() {
    let ws;
    try {
      ws = await api.get('/workspace');
    } catch (e) {
      managedError.textContent = e.message;
      return;
    }
    if (state.destroyed) return;
    if (!ws.managed_by) {
      replace(managed, h('p', { class: 'muted', id: 'managed-by-none' }, 'No agency manages this workspace.'));
      return;
    }
    const name = ws.managed_by.name;
    const unlink = confirmButton(`Unlink ${name}`, `Unlink ${name} now`, async () => {
      const done = await busy(null, managedError, () => api.post('/workspace/unlink-agency', {}).then(() => true));
      if (done) loadManaged();
    }, { id: 'unlink-agency' });
    replace(
      managed,
      h('p', { role: 'status', id: 'managed-by-text' }, `Managed by ${name}`),
      h('p', { class: 'muted small' }, `${name} reads your leads, their timelines and your team report. It can't change anything. Unlinking ends its access at once.`),
      unlink,
    );
  }

  async function loadAgency() {
    let agency = null;
    try {
      agency = await api.get('/agency');
    } catch (e) {
      if (e.status !== 404) {
        const err = errorLine('agency-error');
        err.textContent = e.message;
        replace(modeSlot, panel('Agency mode', err));
        return;
      }
    }
    if (state.destroyed) return;
    state.agency = agency;
    if (!agency) {
      renderMakeAgency();
      replace(clientsSlot);
      return;
    }
    replace(modeSlot, panel('Agency mode', h('p', { id: 'agency-name' }, `This workspace is the agency “${agency.name}”.`)));
    renderClients();
  }

  function renderMakeAgency() {
    const name = h('input', { type: 'text', id: 'agency-name-input', maxlength: 200, required: true, autocomplete: 'organization' });
    const submit = h('button', { type: 'submit', class: 'btn primary', id: 'agency-make' }, 'Make this workspace an agency');
    const error = errorLine('agency-make-error');
    const form = h('form', { class: 'settings-form', novalidate: true, 'aria-label': 'Agency mode' }, field('Agency name', name), error, h('div', { class: 'form-actions' }, submit));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!name.value.trim()) {
        error.textContent = 'Give the agency a name.';
        name.focus();
        return;
      }
      const a = await busy(submit, error, () => api.post('/agency', { name: name.value.trim() }));
      if (a) loadAgency();
    });
    replace(modeSlot, panel('Agency mode', h('p', { class: 'muted' }, 'Make this workspace an agency to invite clients and follow their leads.'), form));
  }

  function renderClients() {
    const email = h('input', { type: 'email', id: 'client-email', maxlength: 254, required: true, autocomplete: 'off' });
    const name = h('input', { type: 'text', id: 'client-name', maxlength: 200, autocomplete: 'off' });
    const submit = h('button', { type: 'submit', class: 'btn primary', id: 'client-invite' }, 'Invite client');
    const error = errorLine('client-invite-error');
    const result = h('div', { id: 'client-invite-result', 'aria-live': 'polite' });
    const form = h('form', { class: 'settings-form', novalidate: true, id: 'client-form', 'aria-label': 'Invite a client' }, h('div', { class: 'field-row' }, field('Client admin’s email', email), field('Client name', name)), error, h('div', { class: 'form-actions' }, submit), result);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!email.value.trim()) {
        error.textContent = 'Enter the email of the client workspace’s admin.';
        email.focus();
        return;
      }
      const body = { email: email.value.trim() };
      if (name.value.trim()) body.name = name.value.trim();
      const inv = await busy(submit, error, () => api.post('/agency/clients', body));
      if (!inv) return;
      email.value = '';
      name.value = '';
      showLink(result, inv);
      loadClients();
    });
    const list = h('ul', { class: 'settings-list', id: 'agency-clients', 'aria-label': 'Clients' });
    const listError = errorLine('clients-error');
    replace(clientsSlot, panel('Invite a client', form), panel('Clients', listError, list));
    state.list = list;
    state.listError = listError;
    loadClients();
  }

  function showLink(slot, inv) {
    const link = `${location.origin}/#/agency-accept/${inv.accept_token}`;
    const input = h('input', { type: 'text', readonly: true, value: link, class: 'accept-link', 'aria-label': `Accept link for ${inv.email}` });
    replace(slot, h('p', { role: 'status' }, `Invitation created for ${inv.email}. Send them this link (it works for 7 days):`), input, copyButton(() => link, 'Copy link'));
  }

  async function loadClients() {
    let page;
    try {
      page = await api.get('/agency/clients', { limit: 200 });
    } catch (e) {
      state.listError.textContent = e.message;
      return;
    }
    if (state.destroyed) return;
    replace(state.list, page.clients.length ? page.clients.map(clientRow) : h('li', { class: 'empty muted' }, 'No clients yet.'));
  }

  function clientRow(c) {
    const rowError = errorLine();
    const linkSlot = h('div');
    const actions = [];
    const act = (text, fn, action) => {
      const b = h('button', { type: 'button', class: 'btn small', dataset: { action }, 'aria-label': `${text} ${c.name}` }, text);
      b.addEventListener('click', async () => {
        const out = await busy(b, rowError, fn);
        if (out !== undefined) loadClients();
      });
      return b;
    };
    if (c.status === 'managing') {
      actions.push(h('a', { class: 'btn small primary', href: `#/agency/${c.id}`, dataset: { action: 'view' } }, `View ${c.name}`));
      actions.push(confirmButton('Unlink', `Unlink ${c.name} now`, async () => {
        const done = await busy(null, rowError, () => api.post(`/agency/clients/${c.id}/unlink`, {}).then(() => true));
        if (done) loadClients();
      }));
    } else {
      const resend = h('button', { type: 'button', class: 'btn small', dataset: { action: 'resend' }, 'aria-label': `Resend to ${c.name}` }, 'Resend');
      resend.addEventListener('click', async () => {
        const inv = await busy(resend, rowError, () => api.post(`/agency/clients/${c.id}/resend`, {}));
        if (inv) {
          await loadClients();
          showLink(h('div'), inv);
        }
      });
      actions.push(resend);
      if (c.status === 'invited') actions.push(act('Cancel', () => api.del(`/agency/clients/${c.id}`).then(() => true), 'cancel'));
      else actions.push(act('Remove', () => api.del(`/agency/clients/${c.id}`).then(() => true), 'remove'));
    }
    const facts = [h('span', { class: 'muted small' }, c.email)];
    if (c.workspace) facts.push(h('span', { class: 'muted small' }, ` · workspace ${c.workspace.name}`));
    if (c.status === 'managing') {
      facts.push(h('div', { class: 'small client-stats' }, `${c.leads} leads · ${c.uncontacted} not contacted · average first response ${duration(c.avg_first_response_secs)}`));
    }
    return h(
      'li',
      { class: 'settings-item', dataset: { id: c.id, email: c.email, status: c.status } },
      h('div', { class: 'item-main' }, h('div', { class: 'item-text' }, h('strong', {}, c.name), ' ', clientChip(c.status), h('div', {}, facts)), h('div', { class: 'item-actions' }, actions)),
      rowError,
      linkSlot,
    );
  }

  loadManaged();
  loadAgency();
  return {
    destroy() {
      state.destroyed = true;
    },
  };
}

/** A managed client: its dashboard and leads, or one lead with its timeline. */
function clientPage(root, clientId, leadId) {
  const body = settingsFrame(root, 'Client', null);
  const state = { destroyed: false };
  const error = errorLine('client-error');
  const status = statusLine('client-status');
  replace(body, h('p', {}, h('a', { href: '#/agency' }, '← All clients')), error, status);

  async function load() {
    status.textContent = 'Loading…';
    let client = null;
    let report = null;
    try {
      const page = await api.get('/agency/clients', { limit: 200 });
      client = page.clients.find((c) => c.id === clientId) || null;
      report = await api.get(`/agency/clients/${clientId}/reports/team`);
    } catch (e) {
      status.textContent = '';
      error.textContent = e.status === 404 ? 'This client is not linked: its data is not available.' : e.message;
      return;
    }
    if (state.destroyed) return;
    status.textContent = '';
    const names = new Map(report.members.map((m) => [m.member_id, m.name]));
    const title = client ? client.workspace?.name || client.name : 'Client';
    body.closest('.settings').querySelector('h1').textContent = title;
    if (leadId) await showLead(names);
    else await showDashboard(report, names);
  }

  async function showDashboard(report, names) {
    const t = report.totals;
    const totals = h(
      'dl',
      { class: 'client-totals', 'aria-label': 'Totals' },
      h('dt', {}, 'Leads assigned'),
      h('dd', {}, String(t.assigned)),
      h('dt', {}, 'Contacted'),
      h('dd', {}, String(t.contacted)),
      h('dt', {}, 'Average first response'),
      h('dd', {}, duration(t.avg_first_response_secs)),
    );
    const team = h(
      'table',
      { class: 'table', 'aria-label': 'Team report' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Member'), h('th', {}, 'Assigned'), h('th', {}, 'Contacted'), h('th', {}, 'First response'))),
      h('tbody', {}, report.members.map((m) => h('tr', {}, h('td', {}, m.name), h('td', {}, String(m.assigned)), h('td', {}, String(m.contacted)), h('td', {}, duration(m.avg_first_response_secs))))),
    );
    let leads;
    try {
      leads = await api.get(`/agency/clients/${clientId}/leads`, { limit: 200 });
    } catch (e) {
      error.textContent = e.message;
      return;
    }
    if (state.destroyed) return;
    const rows = leads.leads.map((l) =>
      h(
        'tr',
        { dataset: { id: l.id } },
        h('td', {}, h('a', { href: `#/agency/${clientId}/${l.id}` }, l.name)),
        h('td', {}, l.status || '—'),
        h('td', {}, l.assignee_id ? names.get(l.assignee_id) || 'someone' : 'Unassigned'),
        h('td', {}, l.contacted ? 'Yes' : 'No'),
        h('td', {}, duration(l.first_response_secs)),
      ),
    );
    const table = h(
      'table',
      { class: 'table', id: 'client-leads', 'aria-label': 'Leads' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Lead'), h('th', {}, 'Status'), h('th', {}, 'Assignee'), h('th', {}, 'Contacted'), h('th', {}, 'First response'))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No leads yet.'))),
    );
    body.append(panel('Dashboard', totals, team), panel('Leads', table));
  }

  async function showLead(names) {
    let lead;
    try {
      lead = await api.get(`/agency/clients/${clientId}/leads/${leadId}`, { limit: 100 });
    } catch (e) {
      error.textContent = e.status === 404 ? 'This lead is not available.' : e.message;
      return;
    }
    if (state.destroyed) return;
    const facts = h(
      'dl',
      { class: 'client-totals', 'aria-label': 'Lead' },
      h('dt', {}, 'Phone'),
      h('dd', {}, lead.phone || '—'),
      h('dt', {}, 'Status'),
      h('dd', {}, lead.status || '—'),
      h('dt', {}, 'Assignee'),
      h('dd', {}, lead.assignee_id ? names.get(lead.assignee_id) || 'someone' : 'Unassigned'),
      h('dt', {}, 'Contacted'),
      h('dd', {}, lead.contacted ? 'Yes' : 'No'),
      h('dt', {}, 'First response'),
      h('dd', {}, duration(lead.first_response_secs)),
    );
    const items = lead.timeline.activities.map((a) =>
      h('li', { class: 'timeline-item', dataset: { type: a.type } }, h('span', { class: 'muted small' }, full(a.created_at)), ' ', h('strong', {}, a.type.replace(/_/g, ' ')), a.member_id ? ` by ${names.get(a.member_id) || 'someone'}` : '', a.data && a.data.text ? `: ${a.data.text}` : ''),
    );
    body.append(
      h('p', {}, h('a', { href: `#/agency/${clientId}` }, '← Back to the client')),
      panel(lead.name, facts),
      panel('Timeline', h('ul', { class: 'settings-list', id: 'lead-timeline', 'aria-label': 'Timeline' }, items.length ? items : h('li', { class: 'muted' }, 'Nothing yet.'))),
    );
  }

  load();
  return {
    destroy() {
      state.destroyed = true;
    },
  };
}
