// The template picker of a chat whose 24-hour window is closed: the number's synced templates,
// the body's preview, one field per {{n}} placeholder (and a link for a media header). A
// number with no synced templates keeps the free-text form it is given.

import { api } from './api.js';
import { h, replace } from './dom.js';

const PLACEHOLDER = /\{\{\s*([^}]+?)\s*\}\}/g;

function component(t, kind) {
  return (t.components || []).find((c) => String(c.type || '').toUpperCase() === kind) || null;
}

function placeholders(text) {
  const seen = [];
  for (const m of String(text || '').matchAll(PLACEHOLDER)) if (!seen.includes(m[1])) seen.push(m[1]);
  return seen;
}

function render(text, values) {
  return String(text || '').replace(PLACEHOLDER, (all, key) => (values[key] ? values[key] : all));
}

// Returns an element holding `fallback` until the templates are known; `onSent(message)`.
export function templatePicker(conv, fallback, onSent) {
  const box = h('div', { class: 'template-box' }, fallback);
  api
    .get(`/numbers/${conv.number_id}/templates`)
    .then((page) => {
      const list = (page.templates || []).filter((t) => t.status === 'APPROVED');
      if (list.length) replace(box, pickerForm(conv, list, fallback.querySelector('.notice'), onSent));
    })
    .catch(() => {});
  return box;
}

function pickerForm(conv, list, notice, onSent) {
  const pick = h('select', { id: 'template-pick', required: true }, list.map((t, i) => h('option', { value: String(i) }, `${t.name} (${t.language})`)));
  const fields = h('div', { class: 'template-fields' });
  const preview = h('p', { class: 'template-preview', role: 'status', 'aria-label': 'Preview' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const send = h('button', { type: 'submit', class: 'btn primary' }, 'Send template');
  let inputs = [];
  let media = null;
  const chosen = () => list[Number(pick.value)];
  const refresh = () => {
    const values = Object.fromEntries(inputs.map(([key, input]) => [key, input.value.trim()]));
    preview.textContent = render(component(chosen(), 'BODY')?.text, values);
  };
  const build = () => {
    const t = chosen();
    inputs = placeholders(component(t, 'BODY')?.text).map((key) => {
      const input = h('input', { required: true, maxlength: '1024', autocomplete: 'off' });
      input.addEventListener('input', refresh);
      return [key, input];
    });
    const header = component(t, 'HEADER');
    const format = header ? String(header.format || '').toLowerCase() : '';
    media = ['image', 'video', 'document'].includes(format) ? [format, h('input', { type: 'url', required: true, placeholder: 'https://…' })] : null;
    replace(
      fields,
      media ? h('label', {}, `Header ${media[0]} link`, media[1]) : null,
      inputs.map(([key, input]) => h('label', {}, `{{${key}}}`, input)),
    );
    refresh();
  };
  pick.addEventListener('change', build);
  const form = h(
    'form',
    { class: 'template-form', 'aria-label': 'Send a template' },
    notice,
    h('label', { for: 'template-pick' }, 'Template', pick),
    preview,
    fields,
    h('div', { class: 'composer-row' }, error, send),
  );
  build();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    if (!form.reportValidity()) return;
    const t = chosen();
    const named = inputs.some(([key]) => !/^\d+$/.test(key));
    const parameters = inputs.map(([key, input]) => (named ? { type: 'text', parameter_name: key, text: input.value.trim() } : { type: 'text', text: input.value.trim() }));
    const components = [];
    if (media) components.push({ type: 'header', parameters: [{ type: media[0], [media[0]]: { link: media[1].value.trim() } }] });
    if (parameters.length) components.push({ type: 'body', parameters });
    const template = { name: t.name, language: t.language };
    if (components.length) template.components = components;
    send.disabled = true;
    try {
      onSent(await api.post(`/conversations/${conv.id}/messages`, { type: 'template', template }));
      for (const [, input] of inputs) input.value = '';
      refresh();
    } catch (e) {
      error.textContent = e.message;
    } finally {
      send.disabled = false;
    }
  });
  return form;
}
