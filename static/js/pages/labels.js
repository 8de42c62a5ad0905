// Settings: Labels (admins). Create with a name and a colour from the palette, rename,
// recolour, delete. A label granted to a member shows them every chat carrying it.

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { labelHue, PALETTE } from '../convlist.js';
import { settingsFrame, notAllowed, panel, field, errorLine, confirmButton, busy, nextId } from '../settings.js';

export function render(root, ctx) {
  if (!ctx.isAdmin) return notAllowed(root, 'Labels', 'admins');
  const body = settingsFrame(root, 'Labels', 'Labels sort chats, and grant access: a member sees every chat with a label granted to them (Team page).');
  const state = { labels: [], editing: null, destroyed: false };

  const name = h('input', { type: 'text', id: 'label-name', maxlength: 100, required: true, autocomplete: 'off' });
  const colours = palette('label-color', PALETTE[0][1]);
  const submit = h('button', { type: 'submit', class: 'btn primary', id: 'label-submit' }, 'Create label');
  const error = errorLine('label-error');
  const form = h('form', { class: 'settings-form', id: 'label-form', novalidate: true }, h('div', { class: 'field-row' }, field('Name', name)), colours.el, error, h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!name.value.trim()) {
      error.textContent = 'Give the label a name.';
      name.focus();
      return;
    }
    const l = await busy(submit, error, () => api.post('/labels', { name: name.value.trim(), color: colours.value() }));
    if (!l) return;
    name.value = '';
    upsert(l);
    ctx.refreshLabels();
    name.focus();
  });

  const list = h('ul', { class: 'settings-list', id: 'labels', 'aria-label': 'Labels' });
  const listError = errorLine('labels-error');
  replace(body, panel('New label', form), panel('All labels', listError, list));

  async function load() {
    let fresh = null;
    try {
      fresh = (await api.get('/labels')).labels;
    } catch (e) {
      listError.textContent = e.message;
    }
    if (state.destroyed || !fresh) return;
    // Redraw only on a real change, and never under an open editor.
    const same = JSON.stringify(fresh) === JSON.stringify(state.labels) && list.childElementCount;
    state.labels = fresh;
    if (!same && !state.editing) renderList();
  }

  function upsert(l) {
    const i = state.labels.findIndex((x) => x.id === l.id);
    if (i >= 0) state.labels[i] = l;
    else state.labels.push(l);
    state.labels.sort((a, b) => a.name.localeCompare(b.name));
    renderList();
  }

  function renderList() {
    replace(list, state.labels.length ? state.labels.map(row) : h('li', { class: 'empty muted' }, 'No labels yet.'));
  }

  function row(l) {
    const rowError = errorLine();
    if (state.editing === l.id) {
      const nameIn = h('input', { type: 'text', value: l.name, maxlength: 100, id: nextId('label-edit') });
      const pal = palette(nextId('label-edit-color'), l.color);
      const save = h('button', { type: 'submit', class: 'btn primary small' }, 'Save');
      const cancel = h('button', { type: 'button', class: 'btn ghost small' }, 'Cancel');
      cancel.addEventListener('click', () => {
        state.editing = null;
        renderList();
      });
      const f = h('form', { class: 'settings-form', 'aria-label': `Edit label ${l.name}` }, h('div', { class: 'field-row' }, field('Name', nameIn)), pal.el, rowError, h('div', { class: 'form-actions' }, save, cancel));
      f.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const out = await busy(save, rowError, () => api.patch(`/labels/${l.id}`, { name: nameIn.value.trim(), color: pal.value() }));
        if (!out) return;
        state.editing = null;
        upsert(out);
        ctx.refreshLabels();
      });
      setTimeout(() => nameIn.focus());
      return h('li', { class: 'settings-item', dataset: { id: l.id } }, f);
    }
    const edit = h('button', { type: 'button', class: 'btn small', 'aria-label': `Edit ${l.name}` }, 'Edit');
    edit.addEventListener('click', () => {
      state.editing = l.id;
      renderList();
    });
    const del = confirmButton('Delete', `Delete “${l.name}”`, async () => {
      const done = await busy(null, rowError, () => api.del(`/labels/${l.id}`).then(() => true));
      if (!done) return;
      state.labels = state.labels.filter((x) => x.id !== l.id);
      renderList();
      ctx.refreshLabels();
    });
    return h(
      'li',
      { class: 'settings-item', dataset: { id: l.id, name: l.name } },
      h(
        'div',
        { class: 'item-main' },
        h('div', { class: 'item-text' }, h('span', { class: `chip label big hue-${labelHue(l)}` }, l.name), h('div', { class: 'muted small' }, 'Deleting it takes it off every chat and every member it was granted to.')),
        h('div', { class: 'item-actions' }, edit, del),
      ),
      rowError,
    );
  }

  const off = ctx.live.on((e) => {
    if ((e.type === 'label.updated' || e.type === 'label.deleted' || e.type === 'resync') && !state.editing) load();
  });
  load();
  name.focus();
  return {
    destroy() {
      state.destroyed = true;
      off();
    },
  };
}

/** A radio group of the palette's colours, each shown as a swatch with its name. */
function palette(prefix, current) {
  const currentHue = labelHue({ color: current || PALETTE[0][1], name: '' });
  const radios = PALETTE.map(([title, hex], i) => {
    const input = h('input', { type: 'radio', name: prefix, value: hex, id: `${prefix}-${i}`, checked: i === currentHue, class: 'swatch-input' });
    return { input, label: h('label', { class: 'swatch-label', for: input.id }, input, h('span', { class: `swatch hue-${i}`, 'aria-hidden': 'true' }), h('span', { class: 'swatch-name' }, title)) };
  });
  const el = h('fieldset', { class: 'checks palette' }, h('legend', {}, 'Colour'), radios.map((r) => r.label));
  return { el, value: () => (radios.find((r) => r.input.checked) || radios[0]).input.value };
}
