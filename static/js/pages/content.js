// Content: the quick replies and pages agents send in a tap. Everyone lists what they see
// (their own items, the workspace's, their teams'); creating needs "Create content" (admins
// always) and makes a private item; sharing wider needs "Manage content visibility" (teams:
// one's own teams, admins any); editing another's item needs "Edit others' content"; only
// admins delete. The controls follow these rules; the server decides, and a refusal is shown
// as the API words it.

import { all, api } from '../api.js';
import { h, replace } from '../dom.js';
import { full } from '../format.js';
import { settingsFrame, panel, field, errorLine, confirmButton, busy, nextId } from '../settings.js';

const KINDS = [
  ['message', 'Quick reply', 'The text goes into the reply box. {{lead.name}}, {{lead.phone}}, {{member.name}} and {{lead.custom.KEY}} are filled in.'],
  ['page', 'Page', 'Markdown. Sending it sends the lead a personal link; you hear when they open it.'],
];
const KIND_NAME = { message: 'Quick reply', page: 'Page', file: 'File' };
const VISIBILITY = [
  ['private', 'Only me (private)'],
  ['teams', 'My teams'],
  ['workspace', 'Everyone in the workspace'],
];

export function render(root, ctx) {
  const body = settingsFrame(root, 'Content', 'Quick replies and pages to send in a tap: type / in a chat’s reply box to find them.');
  const state = { items: [], teams: [], editing: null, q: '', destroyed: false };
  const canCreate = ctx.isAdmin || !!ctx.perms.create_content;
  const canScope = ctx.isAdmin || !!ctx.perms.manage_content_visibility;
  const canEditOthers = ctx.isAdmin || !!ctx.perms.edit_others_content;

  // --- create -----------------------------------------------------------------------------
  let createPanel = null;
  if (canCreate) {
    const kind = h('select', { id: 'content-kind' }, KINDS.map(([v, t]) => h('option', { value: v }, t)));
    const title = h('input', { type: 'text', id: 'content-title', maxlength: 200, required: true, autocomplete: 'off' });
    const shortcut = h('input', { type: 'text', id: 'content-shortcut', maxlength: 51, autocomplete: 'off', placeholder: 'e.g. hours' });
    const text = h('textarea', { id: 'content-body', rows: 4, maxlength: 100000, required: true });
    const hint = h('span', { class: 'hint' }, KINDS[0][2]);
    kind.addEventListener('change', () => {
      hint.textContent = (KINDS.find(([v]) => v === kind.value) || KINDS[0])[2];
    });
    const create = h('button', { type: 'submit', class: 'btn primary' }, 'Create');
    const error = errorLine('content-create-error');
    const form = h(
      'form',
      { class: 'settings-form', 'aria-label': 'New content' },
      h('div', { class: 'field-row' }, field('Kind', kind), field('Title', title), field('Shortcut', shortcut, 'Optional: one word, found after / in the reply box.')),
      h('div', { class: 'field' }, h('label', { for: text.id }, 'Text'), text, hint),
      error,
      h('div', { class: 'form-actions' }, create),
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const payload = { kind: kind.value, title: title.value.trim(), body: text.value };
      if (shortcut.value.trim()) payload.shortcut = shortcut.value.trim();
      const item = await busy(create, error, () => api.post('/content', payload));
      if (!item) return;
      form.reset();
      state.items.push(item);
      // A new item is private: open it, so it can be shared at once.
      state.editing = item.id;
      draw();
    });
    createPanel = h('details', { class: 'settings-panel', open: true }, h('summary', {}, h('h2', {}, 'New content')), form);
  }

  // --- list -------------------------------------------------------------------------------
  const search = h('input', { type: 'search', id: 'content-search', 'aria-label': 'Search content', placeholder: 'Title or shortcut', autocomplete: 'off' });
  let searchTimer = null;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.q = search.value.trim();
      load();
    }, 200);
  });
  const list = h('ul', { class: 'settings-list', id: 'content-list', 'aria-label': 'Content items' });
  const listError = errorLine();
  replace(body, createPanel, panel('Library', h('div', { class: 'tool-row settings-tools' }, search), listError, list));

  const teamName = (id) => (state.teams.find((t) => t.id === id) || {}).name || 'a team';
  const myTeams = () => state.teams.filter((t) => (t.member_ids || []).includes(ctx.me.id));

  function draw() {
    replace(list, state.items.length ? state.items.map(row) : h('li', { class: 'empty muted' }, state.q ? 'Nothing matches.' : 'No content yet.'));
  }

  function visibilityText(c) {
    if (c.visibility === 'workspace') return 'Everyone';
    if (c.visibility === 'teams') return `Teams: ${(c.team_ids || []).map(teamName).join(', ')}`;
    return 'Private';
  }

  function row(c) {
    const error = errorLine();
    const mine = c.owner_id === ctx.me.id;
    const actions = [];
    if (mine || canEditOthers) {
      const edit = h('button', { type: 'button', class: 'btn small', 'aria-label': `Edit ${c.title}` }, 'Edit');
      edit.addEventListener('click', () => {
        state.editing = state.editing === c.id ? null : c.id;
        draw();
      });
      actions.push(edit);
    }
    if (ctx.isAdmin) {
      actions.push(
        confirmButton('Delete', `Delete ${c.title}`, async () => {
          const ok = await busy(null, error, () => api.del(`/content/${c.id}`).then(() => true));
          if (ok) {
            state.items = state.items.filter((x) => x.id !== c.id);
            draw();
          }
        }),
      );
    }
    return h(
      'li',
      { class: 'settings-item content-item', dataset: { id: c.id } },
      h(
        'div',
        { class: 'item-main' },
        h(
          'div',
          { class: 'item-text' },
          h('div', { class: 'item-title' }, c.title, c.shortcut ? h('span', { class: 'muted small' }, ` /${c.shortcut}`) : null),
          h('div', { class: 'chips' }, h('span', { class: 'chip' }, KIND_NAME[c.kind] || c.kind), h('span', { class: 'chip visibility' }, visibilityText(c))),
          h('div', { class: 'muted small' }, `${mine ? 'Yours' : `By ${ctx.memberName(c.owner_id)}`} · updated ${full(c.updated_at)}`),
        ),
        h('div', { class: 'item-actions' }, actions),
      ),
      state.editing === c.id ? editor(c) : null,
      error,
    );
  }

  function editor(c) {
    const error = errorLine();
    const prefix = nextId('content-edit');
    const title = h('input', { type: 'text', value: c.title, maxlength: 200, id: `${prefix}-title` });
    const shortcut = h('input', { type: 'text', value: c.shortcut || '', maxlength: 51, id: `${prefix}-shortcut` });
    const text = h('textarea', { rows: 4, maxlength: 100000, id: `${prefix}-body` });
    text.value = c.body || '';
    const parts = [h('div', { class: 'field-row' }, field('Title', title), field('Shortcut', shortcut)), c.kind === 'file' ? null : field('Text', text)];
    let visibility = null;
    const teamBoxes = [];
    if (canScope) {
      visibility = h('select', { id: `${prefix}-visibility` }, VISIBILITY.map(([v, t]) => h('option', { value: v, selected: c.visibility === v }, t)));
      const offered = ctx.isAdmin ? state.teams : myTeams();
      const chosen = new Set(c.team_ids || []);
      for (const t of offered) {
        const input = h('input', { type: 'checkbox', value: t.id, checked: chosen.has(t.id), id: nextId('content-team') });
        teamBoxes.push(input);
      }
      const teamSet = h(
        'fieldset',
        { class: 'checks', hidden: c.visibility !== 'teams' },
        h('legend', {}, 'Teams'),
        teamBoxes.length ? teamBoxes.map((i) => h('label', { class: 'check', for: i.id }, i, h('span', {}, teamName(i.value)))) : h('span', { class: 'muted small' }, ctx.isAdmin ? 'No teams yet: create them in Team settings.' : 'You are in no team.'),
      );
      visibility.addEventListener('change', () => {
        teamSet.hidden = visibility.value !== 'teams';
      });
      parts.push(field('Who sees it', visibility), teamSet);
    } else {
      parts.push(h('p', { class: 'muted small' }, `Visible to: ${visibilityText(c)}. Sharing it wider needs the “Manage content visibility” permission.`));
    }
    const save = h('button', { type: 'submit', class: 'btn primary small' }, 'Save');
    const cancel = h('button', { type: 'button', class: 'btn ghost small' }, 'Cancel');
    const form = h('form', { class: 'settings-form content-editor', 'aria-label': `Edit ${c.title}` }, parts, error, h('div', { class: 'form-actions' }, save, cancel));
    cancel.addEventListener('click', () => {
      state.editing = null;
      draw();
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const patch = {};
      if (title.value.trim() !== c.title) patch.title = title.value.trim();
      if (shortcut.value.trim() !== (c.shortcut || '')) patch.shortcut = shortcut.value.trim();
      if (c.kind !== 'file' && text.value !== (c.body || '')) patch.body = text.value;
      if (visibility) {
        const ids = teamBoxes.filter((i) => i.checked).map((i) => i.value);
        if (visibility.value !== c.visibility || (visibility.value === 'teams' && JSON.stringify(ids) !== JSON.stringify(c.team_ids || []))) {
          patch.visibility = visibility.value;
          if (visibility.value === 'teams') patch.team_ids = ids;
        }
      }
      const out = await busy(save, error, () => api.patch(`/content/${c.id}`, patch));
      if (!out) return;
      state.items = state.items.map((x) => (x.id === out.id ? out : x));
      state.editing = null;
      draw();
    });
    return form;
  }

  async function load() {
    try {
      const [items, teams] = await Promise.all([all('/content', 'content', { q: state.q }), api.get('/teams').then((p) => p.teams || []).catch(() => [])]);
      if (state.destroyed) return;
      state.items = items;
      state.teams = teams;
      listError.textContent = '';
    } catch (e) {
      listError.textContent = e.message;
    }
    if (!list.querySelector('form')) draw();
  }

  load();
  return {
    destroy() {
      state.destroyed = true;
      clearTimeout(searchTimer);
    },
  };
}
