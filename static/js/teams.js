// The Teams section of Team settings: create a team, rename it, choose its members, delete it
// (admins and members with "Manage members"; the API's refusals are shown as it words them).
// A member may be in several teams. Teams decide who sees content shared with them, and an
// assignment rule may take turns within one.

import { api } from './api.js';
import { h, replace } from './dom.js';
import { panel, field, errorLine, confirmButton, busy, nextId } from './settings.js';

export function teamsPanel(ctx) {
  const state = { teams: [], editing: null };
  const list = h('ul', { class: 'settings-list', 'aria-label': 'Teams' });
  const listError = errorLine();
  const name = h('input', { type: 'text', maxlength: 100, autocomplete: 'off', required: true });
  const create = h('button', { type: 'submit', class: 'btn primary' }, 'Create team');
  const createError = errorLine();
  const form = h('form', { class: 'settings-form', 'aria-label': 'New team' }, h('div', { class: 'field-row' }, field('Team name', name)), createError, h('div', { class: 'form-actions' }, create));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!name.value.trim()) {
      createError.textContent = 'Enter a name for the team.';
      return;
    }
    const t = await busy(create, createError, () => api.post('/teams', { name: name.value.trim(), member_ids: [] }));
    if (!t) return;
    form.reset();
    state.teams.push(t);
    state.teams.sort((a, b) => a.name.localeCompare(b.name));
    state.editing = t.id;
    draw();
  });

  const memberName = (id) => ctx.memberName(id) || 'someone';

  function draw() {
    replace(list, state.teams.length ? state.teams.map(row) : h('li', { class: 'empty muted' }, 'No teams yet.'));
  }

  function row(t) {
    const error = errorLine();
    const edit = h('button', { type: 'button', class: 'btn small', 'aria-label': `Edit team ${t.name}` }, 'Edit');
    edit.addEventListener('click', () => {
      state.editing = state.editing === t.id ? null : t.id;
      draw();
    });
    const del = confirmButton('Delete', `Delete ${t.name}`, async () => {
      const ok = await busy(null, error, () => api.del(`/teams/${t.id}`).then(() => true));
      if (ok) {
        state.teams = state.teams.filter((x) => x.id !== t.id);
        draw();
      }
    });
    const members = (t.member_ids || []).map(memberName);
    return h(
      'li',
      { class: 'settings-item team', dataset: { id: t.id } },
      h(
        'div',
        { class: 'item-main' },
        h('div', { class: 'item-text' }, h('div', { class: 'item-title' }, t.name), h('div', { class: 'muted small' }, members.length ? members.join(', ') : 'No members')),
        h('div', { class: 'item-actions' }, edit, del),
      ),
      state.editing === t.id ? editor(t) : null,
      error,
    );
  }

  function editor(t) {
    const error = errorLine();
    const nameIn = h('input', { type: 'text', value: t.name, maxlength: 100, id: nextId('team-name') });
    const chosen = new Set(t.member_ids || []);
    const boxes = [...ctx.members.values()]
      .filter((m) => m.status !== 'deactivated' || chosen.has(m.id))
      .map((m) => {
        const input = h('input', { type: 'checkbox', value: m.id, checked: chosen.has(m.id), id: nextId('team-member') });
        return h('label', { class: 'check', for: input.id }, input, h('span', {}, m.name || m.email));
      });
    const save = h('button', { type: 'submit', class: 'btn primary small' }, 'Save team');
    const cancel = h('button', { type: 'button', class: 'btn ghost small' }, 'Cancel');
    const form = h('form', { class: 'settings-form', 'aria-label': `Edit team ${t.name}` }, field('Name', nameIn), h('fieldset', { class: 'checks' }, h('legend', {}, 'Members'), boxes), error, h('div', { class: 'form-actions' }, save, cancel));
    cancel.addEventListener('click', () => {
      state.editing = null;
      draw();
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const patch = { member_ids: [...form.querySelectorAll('input[type=checkbox]:checked')].map((i) => i.value) };
      if (nameIn.value.trim() && nameIn.value.trim() !== t.name) patch.name = nameIn.value.trim();
      const out = await busy(save, error, () => api.patch(`/teams/${t.id}`, patch));
      if (!out) return;
      state.teams = state.teams.map((x) => (x.id === out.id ? out : x)).sort((a, b) => a.name.localeCompare(b.name));
      state.editing = null;
      draw();
    });
    return form;
  }

  async function load() {
    try {
      state.teams = (await api.get('/teams')).teams || [];
      listError.textContent = '';
    } catch (e) {
      listError.textContent = e.message;
    }
    if (!list.querySelector('form')) draw();
  }

  load();
  return { el: panel('Teams', h('p', { class: 'muted small' }, 'People may be in several teams. Content can be shared with a team, and an assignment rule can take turns within one.'), listError, list, form), load };
}
