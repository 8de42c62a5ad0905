// Settings: Team. Members with their status, invitations (the accept link is shown once),
// resend / cancel, deactivate / reactivate, and editing role, permission flags and granted
// labels. Admins and members with manage_members use it; the API decides what each may change
// (only admins may invite or change admins) and its refusals are shown as they come.

import { all, api } from '../api.js';
import { h, replace, avatar } from '../dom.js';
import { labelHue } from '../convlist.js';
import { teamsPanel } from '../teams.js';
import { PERMISSIONS, settingsFrame, notAllowed, panel, field, checkbox, errorLine, confirmButton, statusChip, busy, copyButton, nextId } from '../settings.js';

const FILTERS = [
  ['', 'Everyone'],
  ['active', 'Active'],
  ['invite_sent', 'Invite sent'],
  ['deactivated', 'Deactivated'],
];

export function render(root, ctx) {
  if (!(ctx.isAdmin || ctx.perms.manage_members)) return notAllowed(root, 'Team', 'admins and members with the “Manage members” permission');
  const body = settingsFrame(root, 'Team', 'Invite people, decide what they may see and do, and switch access off when they leave.');
  const state = { members: [], filter: '', editing: null, destroyed: false };

  // --- invite -----------------------------------------------------------------------------
  const email = h('input', { type: 'email', id: 'invite-email', name: 'email', required: true, multiple: true, maxlength: 16000, autocomplete: 'off' });
  const name = h('input', { type: 'text', id: 'invite-name', name: 'name', maxlength: 200, autocomplete: 'off' });
  const role = roleSelect('invite-role', 'member');
  const perms = permissionBoxes('invite-perm', {});
  const labels = labelBoxes(ctx, 'invite-label', []);
  const submit = h('button', { type: 'submit', class: 'btn primary', id: 'invite-submit' }, 'Send invitation');
  const inviteError = errorLine('invite-error');
  const result = h('div', { id: 'invite-result', class: 'once', hidden: true, 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'settings-form', id: 'invite-form', novalidate: true },
    h('div', { class: 'field-row' }, field('Email', email, 'Several addresses may be separated by commas.'), field('Name', name, 'Optional; they can change it when they accept.'), field('Role', role)),
    perms.el,
    labels.el,
    inviteError,
    h('div', { class: 'form-actions' }, submit),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!email.value.trim()) {
      inviteError.textContent = 'Enter the email address to invite.';
      email.focus();
      return;
    }
    const payload = { email: email.value.trim(), role: role.value, permissions: perms.value(), label_ids: labels.value() };
    if (name.value.trim()) payload.name = name.value.trim();
    const inv = await busy(submit, inviteError, () => api.post('/invitations', payload));
    if (!inv) return;
    // Several comma-separated emails answer {"invitations": [...]}: each is listed, the last shown.
    const many = inv.invitations || [inv];
    showOnce(result, many[many.length - 1], many.length > 1 ? `${many.length} invitations created; the last` : 'Invitation created', () => {
      invitePanel.open = false;
      invitePanel.querySelector('summary').focus();
    });
    form.reset();
    for (const one of many) upsert(one);
  });

  // --- members ----------------------------------------------------------------------------
  const filter = h('select', { id: 'members-filter' }, FILTERS.map(([v, t]) => h('option', { value: v }, t)));
  filter.addEventListener('change', () => {
    state.filter = filter.value;
    renderList();
  });
  const list = h('ul', { class: 'settings-list', id: 'members', 'aria-label': 'Members' });
  const listError = errorLine('members-error');
  const loading = h('p', { class: 'muted' }, 'Loading members…');

  // The invite form folds away: the list is what people come for.
  const invitePanel = h('details', { class: 'settings-panel invite-panel', id: 'invite-panel' }, h('summary', { id: 'invite-toggle' }, h('h2', {}, 'Invite a member')), form, result);
  replace(
    body,
    invitePanel,
    panel('Members', h('div', { class: 'tool-row settings-tools' }, field('Show', filter)), listError, loading, list),
    teamsPanel(ctx).el,
  );

  async function load() {
    let fresh = null;
    try {
      fresh = await all('/members', 'members');
      listError.textContent = '';
    } catch (e) {
      listError.textContent = e.message;
    }
    loading.hidden = true;
    if (state.destroyed) return;
    // Only redraw what changed: a button under someone's pointer stays where it is.
    if (fresh && JSON.stringify(fresh) === JSON.stringify(state.members) && list.childElementCount) return;
    if (fresh) state.members = fresh;
    renderList();
  }

  function upsert(m) {
    const i = state.members.findIndex((x) => x.id === m.id);
    const clean = { ...m };
    delete clean.accept_token;
    delete clean.expires_at;
    if (i >= 0) state.members[i] = { ...state.members[i], ...clean };
    else state.members.push(clean);
    renderList();
  }

  function renderList() {
    const shown = state.members.filter((m) => !state.filter || m.status === state.filter);
    const active = document.activeElement;
    replace(list, shown.length ? shown.map(memberRow) : h('li', { class: 'empty muted' }, 'Nobody here.'));
    // A kept editor was moved into the new row: give it its focus back.
    if (active && active !== document.activeElement && active.isConnected) active.focus();
  }

  function memberRow(m) {
    const error = errorLine();
    const once = h('div', { class: 'once', hidden: true, 'aria-live': 'polite' });
    const act = (button, fn) => busy(button, error, fn);
    const actions = [];
    if (state.editing !== m.id) {
      const edit = h('button', { type: 'button', class: 'btn small', dataset: { action: 'edit' }, 'aria-label': `Edit ${m.name || m.email}` }, 'Edit');
      edit.addEventListener('click', () => {
        closeEditor();
        state.editing = m.id;
        renderList();
        const first = list.querySelector(`[data-id="${m.id}"] .member-editor input, [data-id="${m.id}"] .member-editor select`);
        if (first) first.focus();
      });
      actions.push(edit);
    }
    if (m.status === 'invite_sent') {
      const resend = h('button', { type: 'button', class: 'btn small', dataset: { action: 'resend' } }, 'Resend');
      resend.addEventListener('click', async () => {
        const inv = await act(resend, () => api.post(`/invitations/${m.id}/resend`));
        if (inv) showOnce(once, inv, 'New invitation link');
      });
      actions.push(resend);
      actions.push(
        confirmButton('Cancel invitation', 'Cancel it', async () => {
          const done = await act(null, () => api.del(`/invitations/${m.id}`).then(() => true));
          // A cancelled invitation leaves the list (inviting the email again brings it back).
          if (done) {
            state.members = state.members.filter((x) => x.id !== m.id);
            renderList();
          }
        }),
      );
    }
    if (m.status === 'active' || m.status === 'invite_sent') {
      if (m.status === 'active') {
        actions.push(
          confirmButton('Deactivate', `Deactivate ${m.name || m.email}`, async () => {
            const out = await api.post(`/members/${m.id}/deactivate`).catch((e) => {
              error.textContent = e.code === 'last_admin' ? 'The workspace needs at least one active admin.' : e.message;
            });
            if (out) upsert(out);
          }),
        );
      }
    } else if (m.status === 'deactivated') {
      const re = h('button', { type: 'button', class: 'btn small', dataset: { action: 'reactivate' } }, 'Reactivate');
      re.addEventListener('click', async () => {
        const out = await act(re, () => api.post(`/members/${m.id}/reactivate`));
        if (out) upsert(out);
      });
      actions.push(re);
    }
    const granted = (m.label_ids || []).map((id) => ctx.labels.get(id)).filter(Boolean);
    const flags = PERMISSIONS.filter(([k]) => m.permissions && m.permissions[k]).map(([, t]) => t);
    const who = m.name || m.email;
    return h(
      'li',
      { class: ['settings-item member', m.status], dataset: { id: m.id, email: m.email, status: m.status } },
      h(
        'div',
        { class: 'item-main' },
        avatar(who, m.id),
        h(
          'div',
          { class: 'item-text' },
          h('div', { class: 'item-title' }, h('span', { class: 'member-name' }, who), m.id === ctx.me.id ? h('span', { class: 'muted small' }, '(you)') : null),
          h('div', { class: 'muted small member-email' }, m.email),
          h(
            'div',
            { class: 'chips' },
            h('span', { class: ['chip role', m.role === 'admin' && 'admin'] }, m.role === 'admin' ? 'Admin' : 'Member'),
            statusChip(m.status),
            m.status === 'active' ? presenceChip(ctx.presence.get(m.id) || m.presence) : null,
            granted.map((l) => h('span', { class: `chip label hue-${labelHue(l)}`, title: 'Granted label' }, l.name)),
          ),
          m.role === 'admin' ? h('div', { class: 'muted small' }, 'Sees and manages everything') : h('div', { class: 'muted small member-perms' }, flags.length ? flags.join(' · ') : 'No extra permissions: sees their own chats and granted labels'),
        ),
        h('div', { class: 'item-actions' }, actions),
      ),
      state.editing === m.id ? openEditor(m) : null,
      error,
      once,
    );
  }

  // The open editor survives list refreshes (live updates), so nothing typed is lost.
  let openForm = null;
  function openEditor(m) {
    if (!openForm || openForm.dataset.member !== m.id) {
      openForm = editor(m);
      openForm.dataset.member = m.id;
    }
    return openForm;
  }

  function closeEditor() {
    state.editing = null;
    openForm = null;
  }

  function editor(m) {
    const error = errorLine();
    const prefix = `edit-${m.id.slice(0, 8)}`;
    const nameIn = h('input', { type: 'text', value: m.name || '', maxlength: 200, id: `${prefix}-name` });
    const roleIn = roleSelect(`${prefix}-role`, m.role);
    const permsIn = permissionBoxes(`${prefix}-perm`, m.permissions || {});
    const labelsIn = labelBoxes(ctx, `${prefix}-label`, m.label_ids || []);
    const save = h('button', { type: 'submit', class: 'btn primary small', dataset: { action: 'save' } }, 'Save');
    const cancel = h('button', { type: 'button', class: 'btn ghost small' }, 'Cancel');
    const form = h(
      'form',
      { class: 'member-editor settings-form', 'aria-label': `Edit ${m.name || m.email}` },
      h('div', { class: 'field-row' }, field('Name', nameIn), field('Role', roleIn)),
      permsIn.el,
      labelsIn.el,
      error,
      h('div', { class: 'form-actions' }, save, cancel),
    );
    cancel.addEventListener('click', () => {
      closeEditor();
      renderList();
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const patch = { permissions: permsIn.value(), label_ids: labelsIn.value() };
      if (nameIn.value.trim() && nameIn.value.trim() !== m.name) patch.name = nameIn.value.trim();
      if (roleIn.value !== m.role) patch.role = roleIn.value;
      const out = await busy(save, error, () => api.patch(`/members/${m.id}`, patch));
      if (!out) return;
      closeEditor();
      upsert(out);
    });
    return form;
  }

  // Someone changed the team (maybe elsewhere): refresh; an open editor is kept as it is.
  let timer = null;
  const off = ctx.live.on((e) => {
    if (e.type !== 'member.updated' && e.type !== 'resync' && e.type !== 'label.updated' && e.type !== 'label.deleted') return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (e.type === 'member.updated') load();
      else renderList();
    }, 400);
  });

  load();
  return {
    destroy() {
      state.destroyed = true;
      clearTimeout(timer);
      off();
    },
  };
}

function roleSelect(id, value) {
  return h('select', { id, name: 'role' }, h('option', { value: 'member', selected: value === 'member' }, 'Member'), h('option', { value: 'admin', selected: value === 'admin' }, 'Admin'));
}

/** Checkboxes for the permission flags; value() gives the contract's object. */
function permissionBoxes(prefix, current) {
  const boxes = PERMISSIONS.map(([key, title, hint]) => {
    const c = checkbox(title, { checked: !!current[key], value: key, id: `${prefix}-${key}`, hint });
    c.input.dataset.perm = key;
    return c;
  });
  const el = h('fieldset', { class: 'checks perms' }, h('legend', {}, 'Permissions ', h('span', { class: 'muted small' }, '(admins have all of them)')), boxes.map((b) => b.label));
  return {
    el,
    value: () => Object.fromEntries(boxes.map((b) => [b.input.value, b.input.checked])),
  };
}

/** Checkboxes for the workspace's labels; a granted label shows its chats to the member. */
function labelBoxes(ctx, prefix, current) {
  const labels = [...ctx.labels.values()].sort((a, b) => a.name.localeCompare(b.name));
  const set = new Set(current);
  const boxes = labels.map((l) => {
    const input = h('input', { type: 'checkbox', value: l.id, checked: set.has(l.id), id: nextId(prefix) });
    return { input, label: h('label', { class: 'check', for: input.id }, input, h('span', { class: `chip label hue-${labelHue(l)}` }, l.name)) };
  });
  const el = h(
    'fieldset',
    { class: 'checks labels' },
    h('legend', {}, 'Labels granted ', h('span', { class: 'muted small' }, '(they see every chat with these labels)')),
    boxes.length ? boxes.map((b) => b.label) : h('span', { class: 'muted small' }, 'No labels yet. ', h('a', { href: '#/labels' }, 'Create labels')),
  );
  return { el, value: () => boxes.filter((b) => b.input.checked).map((b) => b.input.value) };
}

/** Shows an invitation's accept link and token; they are never shown again. */
function showOnce(box, inv, title, onDone) {
  const link = `${location.origin}/#/accept/${encodeURIComponent(inv.accept_token)}`;
  const linkIn = h('input', { type: 'text', readonly: true, value: link, id: nextId('accept-link'), class: 'accept-link', 'aria-label': 'Accept link' });
  linkIn.addEventListener('focus', () => linkIn.select());
  const dismiss = h('button', { type: 'button', class: 'btn ghost small' }, 'Done');
  dismiss.addEventListener('click', () => {
    replace(box);
    box.hidden = true;
    if (onDone) onDone();
  });
  replace(
    box,
    h('p', {}, h('strong', {}, `${title} for ${inv.email}.`), ' Send them this link; it is shown only once and works for 7 days.'),
    h('div', { class: 'tool-row' }, linkIn, copyButton(() => link)),
    h('p', { class: 'muted small' }, 'Token: ', h('code', { class: 'accept-token' }, inv.accept_token)),
    h('div', { class: 'form-actions' }, dismiss),
  );
  box.hidden = false;
  linkIn.focus();
}

/** Whether an active member can take chats now: Available, Away or Offline. */
function presenceChip(p) {
  if (!p) return null;
  const text = p === 'available' ? 'Available' : p === 'away' ? 'Away' : 'Offline';
  return h('span', { class: `chip presence-chip ${p}`, title: 'Presence' }, text);
}
